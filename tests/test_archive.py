"""Evidence you can prove: WARC records, screenshots, manifests and verify, on a real crawl.

One sandbox target (东海省, whose service platform needs a browser) is crawled twice
into a fresh data folder; the tests then read the WARC files with warcio and the real
``warcio`` command-line tool, look at the screenshots, tamper with the evidence and
check that ``govevidence verify`` names every change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from db.models import CrawlRun, Finding, PageCapture, Source, WarcRecord
from db.session import get_engine
from govevidence.cli import main
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_command, scrapy_crawl
from govevidence.manifest import verify_run

WARCIO = str(Path(sys.executable).with_name("warcio"))
SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "3", "LOG_LEVEL": "INFO"}


def _crawl(registry: Path, folder: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"}
    result = scrapy_crawl("province_portals", args={"registry": str(registry), "targets": "910000"},
                          settings={**SETTINGS, **extra}, env=env, capture=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def archived(sandbox_registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    _crawl(sandbox_registry, folder)
    _crawl(sandbox_registry, folder)
    return folder


def _session(folder: Path) -> Session:
    return Session(get_engine(f"sqlite:///{folder / 'db.sqlite3'}"))


def _records(path: Path) -> list[tuple[str, str, str | None]]:
    out = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            out.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI") or "",
                        record.rec_headers.get_header("WARC-Payload-Digest")))
    return out


def test_warcio_tool_accepts_every_warc(archived):
    files = sorted(archived.glob("warc/run-*/*.warc.gz"))
    assert len(files) == 2
    for path in files:
        check = subprocess.run([WARCIO, "check", "-v", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        index = subprocess.run([WARCIO, "index", str(path)], capture_output=True, text=True)
        assert index.returncode == 0 and index.stdout.count("\n") > 10


def test_record_layout(archived):
    for path in sorted(archived.glob("warc/run-*/*.warc.gz")):
        records = _records(path)
        assert records[0][0] == "warcinfo" and [r[0] for r in records].count("warcinfo") == 1
        types = {t for t, _, _ in records}
        assert {"request", "resource"} <= types
        for rec_type, uri, digest in records:
            if rec_type in ("response", "revisit"):
                assert uri.startswith("http://127.0.0."), uri
                assert digest.startswith("sha256:")
            if uri.startswith("urn:"):
                assert rec_type == "resource", (rec_type, uri)
        uris = {uri for _, uri, _ in records}
        assert any(u.startswith("urn:rendered:") for u in uris)
        assert any(u.startswith("urn:screenshot:") for u in uris)
        assert any(u.endswith("/robots.txt") for u in uris)


def test_second_run_stores_identical_payloads_once(archived):
    with _session(archived) as session:
        by_run = {run: {t: 0 for t in ("response", "revisit")} for run in (1, 2)}
        for run_id, rec_type in session.execute(select(WarcRecord.run_id, WarcRecord.record_type)):
            if rec_type in ("response", "revisit"):
                by_run[run_id][rec_type] += 1
    assert by_run[1]["response"] > 10
    assert by_run[2]["revisit"] >= by_run[1]["response"] * 0.8
    sizes = [p.stat().st_size for p in sorted(archived.glob("warc/run-*/*.warc.gz"))]
    assert sizes[1] < sizes[0]


def test_capture_pointers_open_their_records(archived):
    with _session(archived) as session:
        captures = session.execute(select(PageCapture).where(PageCapture.warc_record_id.is_not(None))).scalars().all()
        index = {r.record_id: r for r in session.execute(select(WarcRecord)).scalars()}
    assert len(captures) > 20
    for capture in captures:
        target = index[capture.warc_record_id]
        if target.record_type == "revisit":
            target = index[target.refers_to]
        with open(archived / target.warc_file, "rb") as fh:
            fh.seek(target.offset)
            record = next(iter(ArchiveIterator(fh)))
            assert record.rec_headers.get_header("WARC-Record-ID") == target.record_id
            payload = record.raw_stream.read()  # as stored: a gzip answer stays compressed
        assert hashlib.sha256(payload).hexdigest() == capture.sha256
        if capture.rendered:
            assert target.target_uri.startswith("urn:rendered:")


def test_screenshots_of_rendered_source(archived):
    with _session(archived) as session:
        rows = session.execute(
            select(Finding, PageCapture).join(PageCapture, PageCapture.id == Finding.capture_id)
            .join(Source, Source.id == Finding.source_id)
            .where(Finding.run_id == 1, Finding.scope == "page", Finding.verdict == "present",
                   Source.kind == "service", PageCapture.rendered.is_(True))
        ).all()
        homes = session.execute(select(PageCapture).where(PageCapture.run_id == 1, PageCapture.depth == 0,
                                                           PageCapture.error_status == "ok")).scalars().all()
    assert rows
    for finding, capture in rows:
        assert finding.screenshot and (archived / finding.screenshot).exists(), finding.indicator
        assert capture.screenshot == finding.screenshot
    with_picture = [f for f, _ in rows if f.evidence_image]
    assert len(with_picture) >= len(rows) * 0.8
    sources_with_home_shot = {c.source_id for c in homes if c.screenshot}
    assert sources_with_home_shot == {c.source_id for c in homes}


def test_highlighted_element_is_the_located_one(archived):
    """The 好差评 widget exists only after scripts run; its picture frames that element, outlined."""
    from playwright.sync_api import sync_playwright

    from crawler.screenshots import MARGIN
    from crawler.settings import PLAYWRIGHT_LAUNCH_OPTIONS

    with _session(archived) as session:
        finding = session.execute(
            select(Finding).join(Source, Source.id == Finding.source_id)
            .where(Finding.run_id == 1, Finding.scope == "source", Source.kind == "service",
                   Finding.indicator == "service.good_bad_review")
        ).scalar_one()
    assert finding.verdict == "present" and finding.evidence_image
    image = Image.open(archived / finding.evidence_image).convert("RGB")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**PLAYWRIGHT_LAUNCH_OPTIONS)
        page = browser.new_page()
        page.goto(finding.url, wait_until="networkidle")
        element = page.locator(f"css={finding.locator}")
        assert element.count() == 1
        assert finding.snippet and finding.snippet[:10] in " ".join(element.inner_text().split())
        box = element.bounding_box()
        browser.close()
    assert abs(image.width - (box["width"] + 2 * MARGIN)) <= 2
    assert abs(image.height - (box["height"] + 2 * MARGIN)) <= 2
    raw = image.tobytes()
    red = sum(1 for i in range(0, len(raw), 3) if raw[i] > 200 and raw[i + 1] < 40 and raw[i + 2] < 60)
    assert red > 2 * (box["width"] + box["height"])  # the outline runs round the element


def test_verify_passes_then_names_each_tampering(archived, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(archived, folder)
    with _session(folder) as session:
        assert verify_run(session, 1, folder) == []
        assert verify_run(session, 2, folder) == []
        warc = session.execute(select(WarcRecord).where(WarcRecord.run_id == 1, WarcRecord.record_type == "response")
                               .order_by(WarcRecord.id).offset(3).limit(1)).scalar_one()
        shot = session.execute(select(Finding.evidence_image).where(Finding.run_id == 1, Finding.evidence_image.is_not(None))
                               .limit(1)).scalar_one()
        finding = session.execute(select(Finding).where(Finding.run_id == 1, Finding.indicator == "site.icp_record",
                                                        Finding.scope == "page").limit(1)).scalar_one()
    data = bytearray((folder / warc.warc_file).read_bytes())
    data[warc.offset + warc.length // 2] ^= 0x01
    (folder / warc.warc_file).write_bytes(bytes(data))
    (folder / shot).unlink()
    with _session(folder) as session, session.begin():
        session.execute(update(Finding).where(Finding.id == finding.id).values(value="浙ICP备00000000号"))
    with _session(folder) as session:
        problems = verify_run(session, 1, folder)
    text = "\n".join(problems)
    assert f"{warc.warc_file}: file altered" in text
    assert f"WARC record {warc.record_id}" in text
    assert f"{shot}: file missing" in text
    assert f"findings {finding.id} (site.icp_record, page): row altered" in text
    with _session(folder) as session:
        assert verify_run(session, 2, folder) == []  # the other run is untouched
    env_before = dict(os.environ)
    try:
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'db.sqlite3'}"
        assert main(["verify", "1", "--archive-dir", str(folder)]) == 1
        assert main(["verify", "2", "--archive-dir", str(folder)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    out = capsys.readouterr().out
    assert "row altered" in out and "一致" in out


def test_warc_files_rotate(sandbox_registry, tmp_path):
    _crawl(sandbox_registry, tmp_path, GOVEVIDENCE_WARC_MAX_SIZE="40000", GOVEVIDENCE_SCREENSHOTS="False")
    files = sorted(tmp_path.glob("warc/run-00001/*.warc.gz"))
    assert len(files) >= 3
    for path in files:
        records = _records(path)
        assert records[0][0] == "warcinfo"
    with _session(tmp_path) as session:
        assert verify_run(session, 1, tmp_path) == []


def _start(registry: Path, folder: Path) -> subprocess.Popen:
    command, env = scrapy_command(
        "province_portals", args={"registry": str(registry)},
        settings={**SETTINGS, "DOWNLOAD_DELAY": "0.2", "CONCURRENT_REQUESTS_PER_DOMAIN": "1"},
        env={"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"})
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_records(folder: Path, minimum: int = 20000, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(p.stat().st_size for p in folder.glob("warc/run-*/*.warc.gz")) >= minimum:
            return
        time.sleep(0.2)
    raise AssertionError("the crawl wrote no WARC data")


def test_first_sigterm_finishes_cleanly(sandbox_registry, tmp_path):
    process = _start(sandbox_registry, tmp_path)
    _wait_for_records(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, 1)
        assert run.status == "interrupted" and run.finish_reason == "shutdown"
        assert verify_run(session, 1, tmp_path) == []


def test_hard_kill_is_reported_not_obscure(sandbox_registry, tmp_path):
    process = _start(sandbox_registry, tmp_path)
    _wait_for_records(tmp_path)
    process.kill()
    process.wait(timeout=30)
    warc = sorted(tmp_path.glob("warc/run-00001/*.warc.gz"))[-1]
    data = warc.read_bytes()
    warc.write_bytes(data[: len(data) - 100])  # a record torn half-way, as a kill during a write leaves it
    with _session(tmp_path) as session:
        problems = verify_run(session, 1, tmp_path)
    assert any("no manifest" in p for p in problems)
    assert any(p.startswith(f"{warc.relative_to(tmp_path)}: truncated or corrupt") for p in problems)
    _crawl(sandbox_registry, tmp_path)  # the next run notices the dead one
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, 1)
        assert run.status == "interrupted" and run.finish_reason == "killed"
        assert run.stats["truncated_warc"] and str(warc.name) in run.stats["truncated_warc"][0]
        assert session.get(CrawlRun, 2).status == "finished"
