"""Running one crawl of the benchmark as a subprocess and reading what it did.

A crawl runs in its own ``scrapy`` process (a Twisted reactor cannot be restarted), in a fresh
folder; :func:`run_crawl` samples its memory in a thread until it exits and reads Scrapy's stats
dump from its log. For GovEvidence crawls :func:`run_govevidence` also reads when the run was
sealed: the run's ``finished_at`` in the database, the manifest file and the log line that names
it — whichever is last — against the moment the process was started. A crawl that ends its run
unsealed (``finished`` without a manifest) is sealed with ``govevidence seal RUN`` right after, and
that counts in the end-to-end time.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_sampling import TreeSampler

ROOT = Path(__file__).resolve().parents[1]
BARE_SPIDER = Path(__file__).resolve().with_name("bare_spider.py")
TARGET_CODE = "990000"

# The same for both crawlers: no politeness delays against our own server, the same concurrency.
COMMON_SETTINGS = {
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "ROBOTSTXT_OBEY": "False",
    "LOG_LEVEL": "INFO",
    "TELNETCONSOLE_ENABLED": "False",
    "REMOTE_CONTROL_ENABLED": "False",
}

_DATETIME = re.compile(r"datetime\.datetime\([^)]*\)")
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)


def parse_stats(log: str) -> dict:
    """The dict Scrapy logs after 'Dumping Scrapy stats:' at the end of a crawl."""
    start = log.rfind("Dumping Scrapy stats:")
    if start < 0:
        return {}
    text = log[log.index("{", start):]
    depth = 0
    for end, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            break
    return ast.literal_eval(_DATETIME.sub("None", text[:end + 1]))


def log_time(log: str, needle: str) -> float | None:
    """Epoch seconds (whole seconds, local time as Scrapy logs it) of the last line containing ``needle``."""
    at = log.rfind(needle)
    if at < 0:
        return None
    line_start = log.rfind("\n", 0, at) + 1
    match = _LOG_TIME.match(log, line_start)
    return time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) if match else None


@dataclass
class Result:
    pages: int  # responses received (Scrapy's response_received_count)
    seconds: float  # Scrapy's elapsed_time_seconds: spider opened to spider closed
    wall: float  # process start to process exit
    cpu: float  # user + system seconds of the crawl process and its waited-for descendants
    max_rss_mb: float  # ru_maxrss: the largest single process of the tree
    peak_rss_mb: float  # sampled RSS peak of the crawler process itself
    tree_pss_mb: float  # sampled peak of the summed PSS of the tree
    end_pss_mb: float = 0.0  # peak summed PSS from the spider closing to the process exit
    child_rss_mb: float = 0.0  # sampled RSS peak of the largest other process (a judging process)
    sealed: float | None = None  # process start to the run sealed (GovEvidence only)
    status: str | None = None
    fetched: float | None = None  # run start to the last page fetched (GovEvidence: before waiting for its judging)
    sealed_by: str | None = None  # "crawl", or "govevidence seal" when the crawl left its run unsealed
    findings: int = 0
    rendered: int = 0
    warc_bytes: int = 0
    screenshots: int = 0
    started_at: float = 0.0  # epoch seconds when the process was started
    pss_quarters: list[float] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    log: str = ""


def run_crawl(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout: float) -> Result:
    epoch_start, started = time.time(), time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
    wall = time.monotonic() - started
    text = log_path.read_text(encoding="utf-8", errors="replace")
    stats = parse_stats(text)
    if proc.returncode != 0 or not stats:
        tail = "\n".join(text.splitlines()[-30:])
        raise RuntimeError(f"crawl failed (exit {proc.returncode}): {' '.join(argv[:6])} …\n{tail}")
    closing = log_time(text, "Closing spider")
    end_pss = sampler.peak_after_mb(started + (closing - epoch_start)) if closing else 0.0
    # ru_maxrss (KiB) of a waited-for child covers its waited-for descendants, as the largest one.
    result = Result(pages=int(stats.get("response_received_count", 0)),
                    seconds=float(stats.get("elapsed_time_seconds", 0.0)), wall=wall,
                    cpu=usage.ru_utime + usage.ru_stime, max_rss_mb=usage.ru_maxrss / 1024,
                    peak_rss_mb=sampler.peak_rss_kb / 1024, tree_pss_mb=sampler.peak_kb / 1024, end_pss_mb=end_pss,
                    child_rss_mb=sampler.peak_child_rss_kb / 1024,
                    rendered=int(stats.get("playwright/page_count", 0)), pss_quarters=sampler.quarters_mb(),
                    started_at=epoch_start, stats=stats, log=text)
    return result


def settings_argv(settings: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in settings.items():
        out += ["-s", f"{key}={value}"]
    return out


def run_bare(url: str, work: Path, timeout: float) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    # Run outside the project folder so Scrapy does not pick up its scrapy.cfg / settings.
    argv = [sys.executable, "-m", "scrapy", "runspider", str(BARE_SPIDER), "-a", f"start={url}",
            *settings_argv(COMMON_SETTINGS)]
    return run_crawl(argv, env, work, work / "crawl.log", timeout)


def write_registry(path: Path, url: str, name: str) -> None:
    source = {"kind": "portal", "url": url, "name": f"{name}门户网站（基准）", "obey_robots": False}
    registry = {"version": 1, "targets": [{"code": TARGET_CODE, "name": "云海省", "level": "province",
                                           "sources": [source], "note": "fictional benchmark portal"}]}
    path.write_text(json.dumps(registry, ensure_ascii=False, indent=1), encoding="utf-8")  # JSON is YAML


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    stamp = dt.datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)  # stored in UTC
    return stamp.timestamp()


def run_govevidence(registry: Path, work: Path, timeout: float, *, budget: int, depth: int, warc: bool,
                    screenshots: bool, extra: dict[str, str] | None = None) -> Result:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from govevidence.crawl import scrapy_command

    data = work / "data"
    data.mkdir()
    database = data / "govevidence.sqlite3"
    settings = {
        **COMMON_SETTINGS,
        # The fictional portal is on loopback, which the address policy refuses by default.
        "GOVEVIDENCE_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GOVEVIDENCE_PORTAL_MAX_DEPTH": str(depth),
        "GOVEVIDENCE_MAX_PAGES_PER_SOURCE": str(budget),
        "GOVEVIDENCE_WARC_ENABLED": str(warc),
        "GOVEVIDENCE_SCREENSHOTS": str(screenshots),
        **(extra or {}),
    }
    env = {"GOVEVIDENCE_DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{database}"}
    argv, environment = scrapy_command("province_portals", args={"registry": str(registry), "targets": TARGET_CODE},
                                       settings=settings, env=env)
    result = run_crawl(argv, environment, ROOT, work / "crawl.log", timeout)
    result.warc_bytes = sum(p.stat().st_size for p in data.glob("warc/**/*.warc.gz"))
    result.screenshots = sum(1 for _ in data.glob("screenshots/**/*.png"))
    run_id, finished_at, result.status, result.findings = _run_row(database)
    result.fetched = _fetch_seconds(database, run_id)
    manifest = data / "runs" / f"run-{run_id:05d}" / "manifest.json"
    result.sealed_by = "crawl"
    if result.status == "finished" and not manifest.exists():
        # The crawl closed its run unsealed (no finisher, or sealing moved out of the crawl):
        # sealing is then part of the end-to-end time, run as the CLI does it.
        seal = subprocess.run([sys.executable, "-c", "import sys; from govevidence.cli import main; sys.exit(main())",
                               "seal", str(run_id)], env=environment, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        with open(work / "crawl.log", "a", encoding="utf-8") as log:
            log.write(seal.stdout + seal.stderr)
        result.log += seal.stdout + seal.stderr
        if seal.returncode != 0:
            raise RuntimeError(f"govevidence seal {run_id} failed (exit {seal.returncode}): {seal.stderr[-2000:]}")
        result.sealed_by = "govevidence seal"
        run_id, finished_at, result.status, result.findings = _run_row(database)
    marks = [_epoch(finished_at), manifest.stat().st_mtime if manifest.exists() else None,
             log_time(result.log, f"Run {run_id}: manifest")]
    if result.status != "finished" or not manifest.exists() or marks[0] is None:
        raise RuntimeError(f"run {run_id} was not sealed: status {result.status}, manifest "
                           f"{'written' if manifest.exists() else 'missing'} ({work / 'crawl.log'})")
    result.sealed = max(m for m in marks if m is not None) - result.started_at
    return result


def _fetch_seconds(database: Path, run_id: int) -> float | None:
    """Seconds from the run's start to its last capture: the crawl's own work, before it waits
    for the judging of what it stored."""
    with sqlite3.connect(database) as db:
        started, last = db.execute("SELECT started_at, (SELECT max(fetched_at) FROM page_captures WHERE run_id = ?) "
                                   "FROM crawl_runs WHERE id = ?", (run_id, run_id)).fetchone()
    if not started or not last:
        return None
    return (dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(started)).total_seconds()


def _run_row(database: Path) -> tuple[int, str | None, str, int]:
    """(id, finished_at, status, findings) of the newest run in a SQLite database."""
    with sqlite3.connect(database) as db:
        run_id, finished_at, status = db.execute(
            "SELECT id, finished_at, status FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchone()
        findings = db.execute("SELECT count(*) FROM findings WHERE run_id = ?", (run_id,)).fetchone()[0]
    return run_id, finished_at, status, findings
