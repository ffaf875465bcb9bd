"""Capture fast, judge beside: the crawl stores captures, judging processes make their findings.

One sandbox target (东海省 910000) is crawled with its captures judged in the crawl process
(``GOVEVIDENCE_JUDGE_WORKERS=0``) and in two judging processes beside it: the findings are the
same. A judging process killed mid-crawl loses no capture's findings. And a run opened with
``govevidence run open --workers 2`` is shared by two crawl processes: the first leaves it
running, the second seals it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CrawlRun, Finding, PageCapture, RunWorker
from db.session import get_engine
from govevidence.cli import main
from govevidence.crawl import scrapy_command, scrapy_crawl
from tests.test_archive import SETTINGS, _crawl

pytestmark = pytest.mark.slow

# Ids differ between databases; so do WARC-Record-IDs (evidence_image_record_id), random per record.
COMPARED = [c.name for c in Finding.__table__.columns
            if c.name not in ("id", "created_at", "judgement_id", "capture_id", "source_id", "target_id", "run_id",
                              "evidence_image_record_id", "derived_from_id")]


def _session(folder: Path) -> Session:
    return Session(get_engine(f"sqlite:///{folder / 'db.sqlite3'}"))


def _findings(folder: Path, run_id: int = 1) -> Counter:
    """Every page finding of a run whole, with its capture named by URL (ids differ between
    databases); of the roll-ups their indicator, verdict and value (lists in them follow the
    order pages happened to arrive in)."""
    with _session(folder) as session:
        rows = session.execute(
            select(Finding, PageCapture.requested_url, PageCapture.rendered)
            .outerjoin(PageCapture, PageCapture.id == Finding.capture_id).where(Finding.run_id == run_id)).all()
        return Counter(
            (url, rendered, *(json.dumps(_comparable(f, n), sort_keys=True, default=str) for n in COMPARED))
            if f.scope == "page" else (f.scope, f.indicator, f.verdict, f.value)
            for f, url, rendered in rows)


def _comparable(finding: Finding, name: str):
    """A finding's field as two crawls of the same pages give it alike: a browser's pictures of
    the same page need not be the same pixels, so of a picture only whether there is one counts
    (its file is named by its digest) and, of its check, how it was taken and whether it matched."""
    value = getattr(finding, name)
    if name in ("screenshot", "evidence_image"):
        return value is not None
    if name == "details" and isinstance(value, dict) and isinstance(value.get("picture"), dict):
        picture = value["picture"]
        return {**value, "picture": {k: picture.get(k) for k in ("method", "pixel_match", "reason")}}
    return value


def _verify(folder: Path, run_id: int, capsys) -> None:
    os.environ["GOVEVIDENCE_DATA_DIR"] = str(folder)
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'db.sqlite3'}"
    try:
        code = main(["verify", str(run_id), "--archive-dir", str(folder)])
    finally:
        del os.environ["GOVEVIDENCE_DATA_DIR"], os.environ["DATABASE_URL"]
    out = capsys.readouterr().out
    assert code == 0, out


@pytest.fixture(scope="module")
def judged_inside(sandbox_registry, tmp_path_factory) -> Path:
    """The target crawled with its captures judged in the crawl process."""
    folder = tmp_path_factory.mktemp("inside")
    _crawl(sandbox_registry, folder, GOVEVIDENCE_JUDGE_WORKERS="0")
    return folder


def test_judging_beside_the_crawl_equals_judging_in_it(sandbox_registry, judged_inside, tmp_path, capsys):
    inside, beside = judged_inside, tmp_path / "beside"
    _crawl(sandbox_registry, beside, GOVEVIDENCE_JUDGE_WORKERS="2")
    made_inside, made_beside = _findings(inside), _findings(beside)
    pages = sum(n for key, n in made_inside.items() if len(key) > 4)
    assert pages > 50  # page findings: every capture judged
    assert made_inside == made_beside
    with _session(beside) as session:
        run = session.get(CrawlRun, 1)
        assert run.status == "finished" and run.stats["govevidence/judge_workers"] == 2
        assert run.stats["govevidence/judged_findings"] == pages
        assert "govevidence/judge_failures" not in run.stats
        # Every capture with an answer was judged (a home page always has findings).
        homes = session.execute(select(PageCapture.id).where(PageCapture.run_id == 1, PageCapture.depth == 0,
                                                             PageCapture.render_reason.is_distinct_from("screenshot"))).scalars().all()
        judged = set(session.execute(select(Finding.capture_id).where(Finding.capture_id.in_(homes))).scalars())
        assert homes and set(homes) == judged
    for folder in (inside, beside):
        _verify(folder, 1, capsys)


def test_a_killed_judging_process_loses_no_findings(sandbox_registry, judged_inside, tmp_path, capsys):
    reference = judged_inside
    folder = tmp_path / "killed"
    folder.mkdir()
    command, env = scrapy_command(
        "province_portals", args={"registry": str(sandbox_registry), "targets": "910000"},
        settings={**SETTINGS, "GOVEVIDENCE_JUDGE_WORKERS": "1"},
        env={"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"})
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    killed = None
    log = []
    for line in process.stderr:  # read to the end: the log is the test's evidence
        log.append(line)
        found = re.search(r"judging process\(es\) beside the crawl \(pids (\d+)\)", line)
        if found and killed is None:
            killed = int(found.group(1))
            # While the crawl goes on, once it has stored its first captures.
            threading.Timer(2.0, os.kill, (killed, signal.SIGKILL)).start()
    process.wait(timeout=300)
    rest = "".join(log)
    assert process.returncode == 0, rest[-3000:]
    assert killed is not None, rest[-3000:]
    assert "left by the judging processes are judged in the crawl process" in rest
    assert _findings(folder) == _findings(reference)
    with _session(folder) as session:
        failures = session.get(CrawlRun, 1).stats["govevidence/judge_failures"]
        assert any(f"judging process {killed} exited with -9" in f for f in failures)
    _verify(folder, 1, capsys)


def test_two_workers_share_one_run(sandbox_registry, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GOVEVIDENCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert main(["run", "open", "--spider", "province_portals", "--workers", "2"]) == 0
    run_id = int(capsys.readouterr().out.strip().splitlines()[-1])
    env = {"GOVEVIDENCE_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    # Sharing a run is what is tested, not crawling: home pages only, no pictures.
    shallow = {**SETTINGS, "GOVEVIDENCE_PORTAL_MAX_DEPTH": "0", "GOVEVIDENCE_SOURCE_MAX_DEPTH": "0",
               "GOVEVIDENCE_SCREENSHOTS": "False"}

    def worker(target: str) -> subprocess.CompletedProcess:
        return scrapy_crawl("province_portals", args={"registry": str(sandbox_registry), "targets": target},
                            settings={**shallow, "GOVEVIDENCE_RUN_ID": str(run_id)}, env=env, capture=True,
                            timeout=300)

    first = worker("910000")
    assert first.returncode == 0, first.stderr[-3000:]
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, run_id)
        assert run.status == "running"  # one worker of two is done
        assert session.execute(select(func.count()).select_from(Finding).where(
            Finding.run_id == run_id, Finding.scope != "page")).scalar() == 0
    second = worker("920000")
    assert second.returncode == 0, second.stderr[-3000:]
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, run_id)
        assert run.status == "finished" and run.workers == 2
        workers = session.execute(select(RunWorker).where(RunWorker.run_id == run_id)).scalars().all()
        assert len(workers) == 2 and all(w.finished_at for w in workers)
        targets = set(session.execute(
            select(Finding.target_id).where(Finding.run_id == run_id, Finding.scope == "target")).scalars())
        assert len(targets) == 2  # one roll-up over both workers' captures
    _verify(tmp_path, run_id, capsys)

    # The run is over: a worker can no longer join it, and is told so in one line.
    late = worker("910000")
    assert late.returncode != 0
    lines = [line for line in late.stderr.splitlines() if f"运行 {run_id}" in line]
    assert lines and "已结束" in lines[-1] and "Traceback" not in late.stderr, late.stderr[-2000:]
