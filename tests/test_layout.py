"""The layout holds: plumbing below, application above, no back-edges.

``crawler/`` (Scrapy plumbing) imports neither ``govevidence`` (the application) nor
``evidence`` (the detectors) — not at module level, not inside a function, not by a string
given to ``importlib.import_module`` / ``load_object`` / ``__import__``; what the application
does at the end of a run is named in the settings (``GOVEVIDENCE_RUN_FINISHERS``).
``evidence/`` imports neither Scrapy, Twisted nor SQLAlchemy. And the application step the
pipeline no longer runs itself can be run later: ``govevidence seal RUN`` on a killed crawl.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scrapy.settings import Settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEntry, CrawlRun, Finding, PageCapture, WarcRecord
from db.session import get_engine
from govevidence.cli import main
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_command, scrapy_crawl

REPO = Path(__file__).resolve().parent.parent
DYNAMIC_IMPORTERS = {"import_module", "load_object", "__import__"}


def imported_names(source: str) -> list[tuple[int, str]]:
    """(line, dotted module name) of every import in a module, wherever it sits, and of every
    string literal handed to ``importlib.import_module``, ``load_object`` or ``__import__``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:  # relative imports stay inside the package
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func_node = node.func
            name = func_node.attr if isinstance(func_node, ast.Attribute) else getattr(func_node, "id", None)
            first = node.args[0]
            if name in DYNAMIC_IMPORTERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def _offending(paths: list[Path], packages: set[str]) -> list[str]:
    out = []
    for path in paths:
        for line, name in imported_names(path.read_text(encoding="utf-8")):
            if name.split(".")[0] in packages:
                out.append(f"{path.relative_to(REPO)}:{line}: {name}")
    return out


def test_the_scanner_sees_every_form_of_import():
    source = '''
import os
import evidence.page as page
from govevidence import seal

def later():
    from govevidence.manifest import write_manifest
    import importlib
    importlib.import_module("evidence.detectors")
    load_object("govevidence.seal.finish_run")
    __import__("govevidence")
    return load_object(SOME_SETTING)  # a name from configuration is not an import

from .warc import RecordPointer
'''
    names = sorted(name for _, name in imported_names(source))
    assert names == sorted(["os", "evidence.page", "govevidence", "govevidence.manifest", "importlib",
                            "evidence.detectors", "govevidence.seal.finish_run", "govevidence"])


def test_crawler_imports_neither_the_application_nor_the_detectors():
    modules = _modules("crawler")
    assert len(modules) >= 15  # the commands package included
    assert _offending(modules, {"govevidence", "evidence"}) == []


def test_crawler_modules_load_no_application_module():
    """Importing every crawler module leaves govevidence and evidence unloaded."""
    script = (
        "import importlib, pkgutil, sys, crawler\n"
        "for m in pkgutil.walk_packages(crawler.__path__, 'crawler.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('govevidence', 'evidence')))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_crawler_errors_imports_from_crawler_only():
    first_party = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists()}
    assert {"crawler", "db", "govevidence", "evidence"} <= first_party
    assert _offending([REPO / "crawler" / "errors.py"], first_party - {"crawler"}) == []


def test_evidence_imports_no_scrapy_twisted_or_sqlalchemy():
    modules = _modules("evidence")
    assert modules
    assert _offending(modules, {"scrapy", "twisted", "sqlalchemy"}) == []


def test_run_finishers_are_configured_by_name():
    from crawler import settings as project
    from crawler.run import load_finishers
    from govevidence.seal import finish_run

    assert [f for _, f in load_finishers(Settings({"GOVEVIDENCE_RUN_FINISHERS": project.GOVEVIDENCE_RUN_FINISHERS}))] \
        == [finish_run]
    assert load_finishers(Settings({"GOVEVIDENCE_RUN_FINISHERS": ""})) == []  # `-s GOVEVIDENCE_RUN_FINISHERS=`
    with pytest.raises(ValueError, match="GOVEVIDENCE_RUN_FINISHERS.*govevidence.seal.no_such"):
        load_finishers(Settings({"GOVEVIDENCE_RUN_FINISHERS": ["govevidence.seal.no_such"]}))


# --- govevidence seal on a killed crawl ---------------------------------------------------
def _session(folder: Path) -> Session:
    return Session(get_engine(f"sqlite:///{folder / 'db.sqlite3'}"))


def _judging_processes(crawl: int) -> list[int]:
    """The pids of the crawl's child processes started by multiprocessing (its judging processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[stat.rindex(b")") + 2:].split()[1]) == crawl and b"multiprocessing" in command:
            found.append(int(entry.name))
    return found


def _kill_a_crawl(registry: Path, folder: Path) -> Path:
    """Start a crawl, SIGKILL it once it has archived something, tear its last WARC file."""
    command, env = scrapy_command(
        "province_portals", args={"registry": str(registry), "targets": "920000,910000"},
        settings={**SANDBOX_SETTINGS, "DOWNLOAD_DELAY": "0.2", "CONCURRENT_REQUESTS_PER_DOMAIN": "1",
                  "GOVEVIDENCE_SCREENSHOTS": "False", "LOG_LEVEL": "INFO"},
        env={"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"})
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while sum(p.stat().st_size for p in folder.glob("warc/run-*/*.warc.gz")) < 20000:
            assert process.poll() is None and time.monotonic() < deadline, "the crawl archived nothing"
            time.sleep(0.2)
        time.sleep(1.5)  # at least one flush of captures and index rows
        judges = _judging_processes(process.pid)
        assert judges, "no judging process beside the crawl"
    finally:
        process.kill()
        process.wait(timeout=30)
    # The judging processes end with their crawl (within a second of being idle, or of their batch).
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{pid}").exists() for pid in judges):
        assert time.monotonic() < deadline, f"judging processes {judges} outlived their crawl"
        time.sleep(0.1)
    warc = sorted(folder.glob("warc/run-00001/*.warc.gz"))[-1]
    data = warc.read_bytes()
    warc.write_bytes(data[: len(data) - 100])  # a record torn half-way, as a kill during a write leaves it
    return warc


@pytest.mark.slow
def test_seal_a_killed_run(sandbox_registry, tmp_path, monkeypatch, capsys):
    warc = _kill_a_crawl(sandbox_registry, tmp_path)
    label = str(warc.relative_to(tmp_path))
    monkeypatch.setenv("GOVEVIDENCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.delenv("GOVEVIDENCE_TSA_URL", raising=False)
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, 1)
        assert run.status == "running"  # nobody has noticed the kill yet
        indexed_at_kill = session.scalar(select(func.count()).select_from(WarcRecord).where(WarcRecord.run_id == 1))
        judged = select(Finding.capture_id).where(Finding.scope == "page")
        unjudged = session.scalar(select(func.count()).select_from(PageCapture).where(
            PageCapture.run_id == 1, PageCapture.id.not_in(judged)))

    assert main(["seal", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("运行 1 已封存：来源结论 ") and "状态 interrupted（killed）" in out, out
    assert f"✗ {label}: truncated or corrupt" in out, out

    with _session(tmp_path) as session:
        run = session.get(CrawlRun, 1)
        # A sealed killed run stays interrupted / killed: sealing rolls up what was stored, it finishes nothing.
        assert (run.status, run.finish_reason, run.finished_at) == ("interrupted", "killed", None)
        assert run.stats["sealed"]["by"] == "govevidence seal"
        assert run.stats["truncated_warc"] and run.stats["truncated_warc"][0].startswith(f"{label}: truncated")
        scopes = dict(session.execute(select(Finding.scope, func.count()).where(Finding.run_id == 1)
                                      .group_by(Finding.scope)).all())
        assert scopes.get("page", 0) > 0 and scopes.get("source", 0) > 0 and scopes.get("target", 0) > 0
        # What the killed crawl stored but did not judge is judged before the roll-up: every
        # home page has its findings.
        assert run.stats.get("govevidence/judged_at_seal", 0) == unjudged
        homes = set(session.scalars(select(PageCapture.id).where(PageCapture.run_id == 1, PageCapture.depth == 0)))
        assert homes and homes <= set(session.scalars(judged))
        assert run.stats["govevidence/source_findings"] == scopes["source"]
        assert run.stats["govevidence/target_findings"] == scopes["target"]
        indexed = session.scalar(select(func.count()).select_from(WarcRecord).where(WarcRecord.run_id == 1))
        assert indexed >= indexed_at_kill and indexed == indexed_at_kill + run.stats["recovered_warc_records"]
        entries = session.scalar(select(func.count()).select_from(AuditEntry))
    manifest = tmp_path / "runs" / "run-00001" / "manifest.json"
    assert manifest.is_file()
    listed = {item["path"]: item for item in json.loads(manifest.read_text(encoding="utf-8"))["files"]}
    assert {str(p.relative_to(tmp_path)) for p in tmp_path.glob("warc/run-00001/*.warc.gz")} <= set(listed)
    assert listed[label]["torn"][0].startswith(f"{label}: truncated")
    assert "runs/run-00001/findings.jsonl" in listed

    # verify names the torn file, and nothing else: every row, record and file is accounted for.
    assert main(["verify", "1"]) == 1
    problems = [line.strip()[2:] for line in capsys.readouterr().out.splitlines() if line.strip().startswith("✗")]
    assert problems and all(p.startswith(f"{label}: truncated or corrupt") for p in problems), problems

    # A sealed run is left alone: one line, nothing written.
    assert main(["seal", "1"]) == 0
    assert capsys.readouterr().out.strip() == "运行 1 已封存（清单 runs/run-00001/manifest.json），无需再封存。"
    with _session(tmp_path) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == entries

    assert main(["seal", "7"]) == 2
    assert capsys.readouterr().err.strip() == "govevidence: 运行 7 不存在"


@pytest.mark.slow
def test_a_crawl_without_finishers_is_closed_unsealed_then_sealed(sandbox_registry, tmp_path, monkeypatch, capsys):
    env = {"GOVEVIDENCE_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = scrapy_crawl("province_portals", args={"registry": str(sandbox_registry), "targets": "920000"},
                          settings={**SANDBOX_SETTINGS, "GOVEVIDENCE_SCREENSHOTS": "False", "LOG_LEVEL": "INFO",
                                    "GOVEVIDENCE_RUN_FINISHERS": ""},
                          env=env, capture=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "closed unsealed: `govevidence seal 1`" in result.stderr
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, 1)
        assert (run.status, run.finish_reason, run.stats["sealed"]) == ("finished", "finished", "no (no finisher)")
        assert session.scalar(select(func.count()).select_from(Finding).where(Finding.scope != "page")) == 0
    assert not (tmp_path / "runs" / "run-00001" / "manifest.json").exists()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["verify", "1"]) == 1
    assert "no manifest (the run did not finish; status finished)" in capsys.readouterr().out

    assert main(["seal", "1"]) == 0
    assert "状态 finished（finished）" in capsys.readouterr().out
    with _session(tmp_path) as session:
        run = session.get(CrawlRun, 1)
        assert run.status == "finished" and run.stats["govevidence/target_findings"] > 0
    assert main(["verify", "1"]) == 0, capsys.readouterr().out


def test_every_status_crawler_errors_can_return_is_a_term_of_the_vocabulary():
    """``crawler.errors`` spells its statuses itself (crawler/ imports no evidence/): each one it
    can return, read from its source and seen on real failures, is a fetch-failure status."""
    from scrapy.exceptions import IgnoreRequest
    from twisted.internet import error as neterror
    from twisted.python.failure import Failure

    from crawler.browser import BrowserUnavailable
    from crawler.errors import classify_failure
    from vocabulary import CAPTURE_STATUSES, FETCH_FAILURE_STATUSES

    tree = ast.parse((REPO / "crawler" / "errors.py").read_text(encoding="utf-8"))
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "classify_failure")
    returned = {node.value.elts[0].value for node in ast.walk(function)
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple)
                and isinstance(node.value.elts[0], ast.Constant)}
    assert len(returned) >= 9
    assert returned == set(FETCH_FAILURE_STATUSES), sorted(returned ^ set(FETCH_FAILURE_STATUSES))
    assert returned <= set(CAPTURE_STATUSES)

    failures = [neterror.DNSLookupError("nowhere.invalid"), neterror.TCPTimedOutError(),
                neterror.ConnectionRefusedError(), IgnoreRequest("Forbidden by robots.txt"),
                IgnoreRequest("max redirections reached"), BrowserUnavailable("no browser in this crawl"),
                ValueError("something else")]
    seen = {classify_failure(Failure(exc))[0] for exc in failures}
    assert seen == {"dns_error", "timeout", "unreachable", "blocked_by_robots", "redirect_loop",
                    "browser_unavailable", "error"}
    assert seen <= returned
