"""The crawl's findings, made beside it: a capture handler (``GOVEVIDENCE_CAPTURE_HANDLERS``)
that judges each batch of stored captures in worker processes while the crawl goes on.

The crawl process only fetches, archives and stores captures (``crawler/``); the run context
hands this handler the ids of each batch it stored. ``GOVEVIDENCE_JUDGE_WORKERS`` processes
(started with ``spawn`` when the run opens; 0 judges in the crawl process) read the captures
back from the database and the WARC files and judge them with ``govevidence.judge.CaptureJudge``
— the same code ``govevidence judge RUN`` runs later — then store the findings (the crawl's
own: no judgement id) and chain them in the audit log (``findings.add``). ``close()`` waits until
every capture handed over is judged; a worker that died leaves its captures to the crawl
process, which judges them itself, so no capture goes without findings.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queue_module
import time
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from sqlalchemy import select
from twisted.internet.task import LoopingCall

from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.findings import insert_findings
from db.models import CrawlRun, Finding, PageCapture
from db.session import session_factory
from crawler.run import sources_found

logger = logging.getLogger(__name__)

ACTOR = "judge"
# How often an idle judging process checks that its crawl is still there.
PARENT_CHECK_SECONDS = 1.0


def judge_batch(session: Session, judge_one: Any, run_id: int, capture_ids: list[int]) -> tuple[int, dict[str, int]]:
    """Judge stored captures and store their findings; (findings stored, statuses counted).
    The sources ``judge_one`` found linked (when it looks for them) are in ``judge_one.found``."""
    captures = session.execute(select(PageCapture).where(PageCapture.id.in_(capture_ids))
                               .order_by(PageCapture.id)).scalars().all()
    statuses: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for capture in captures:
        status, _detail, found, _from_archive = judge_one.judge(capture)
        statuses[status] = statuses.get(status, 0) + 1
        rows.extend(found)
    digests = {str(finding_id): digest for finding_id, digest in insert_findings(session, rows)}
    stored = len(rows)
    if digests:
        audit.append_many(session, ACTOR, [("findings.add", "crawl_runs", run_id, {"run": run_id, "findings": digests})])
    return stored, statuses


class _Judge:
    """One process's (or the crawl's own) judging of one run's captures."""

    def __init__(self, factory: sessionmaker, run_id: int, root: Path, discover: bool = False) -> None:
        from evidence.catalogue import load_catalogue
        from govevidence.judge import CaptureJudge

        self.factory, self.run_id = factory, run_id
        with factory() as session:
            run = session.get(CrawlRun, run_id)
            session.expunge(run)
        self.run, self.root, self.catalogue, self.discover = run, root, load_catalogue(), discover
        self.make = CaptureJudge

    def batch(self, capture_ids: list[int]) -> tuple[int, dict[str, int], list[dict[str, Any]]]:
        """(findings stored, statuses, sources found linked) of a batch of captures."""
        with self.factory.begin() as session:
            judge_one = self.make(session, self.run, self.root, self.catalogue, discover=self.discover)
            stored, statuses = judge_batch(session, judge_one, self.run_id, capture_ids)
            return stored, statuses, judge_one.found


def judge_left(factory: sessionmaker, run_id: int, root: Path, batch: int = 200) -> tuple[int, int]:
    """Judge the captures of a run that have no page findings of the crawl's own judging (its
    crawl was killed before its judging processes got to them); (captures judged, findings
    stored). A capture that makes no finding (an inner page that could not be fetched) is
    judged again each time: it makes none again."""
    with factory() as session:
        judged = select(Finding.capture_id).where(
            Finding.run_id == run_id, Finding.scope == "page", Finding.judgement_id.is_(None),
            Finding.capture_id.is_not(None))
        left = session.execute(select(PageCapture.id).where(
            PageCapture.run_id == run_id, PageCapture.id.not_in(judged)).order_by(PageCapture.id)).scalars().all()
    if not left:
        return 0, 0
    judge, stored = _Judge(factory, run_id, root), 0
    for start in range(0, len(left), batch):
        stored += judge.batch(left[start:start + batch])[0]
    logger.info("Run %s: %d capture(s) the crawl left unjudged are judged (%d page findings)",
                run_id, len(left), stored)
    return len(left), stored


def worker_main(database_url: str, run_id: int, root: str, tasks: Any, done: Any, nice: int = 0) -> None:
    """A judging process: batches of capture ids in, (ids, findings, statuses, sources found
    linked) out; None ends it.
    ``nice`` lowers its priority so that the crawl keeps its pace when the cores are busy; what
    is left to judge when the crawl ends is judged then. It ends with its crawl: a crawl that
    was killed leaves what it stored to ``govevidence seal``, not to a process nobody waits for."""
    if nice > 0:
        os.nice(nice)
    crawl = os.getppid()
    judge = _Judge(session_factory(database_url), run_id, Path(root), discover=True)
    while True:
        try:
            ids = tasks.get(timeout=PARENT_CHECK_SECONDS)
        except queue_module.Empty:
            ids = ()
        if os.getppid() != crawl:
            logger.warning("Run %s: the crawl process %s is gone; the judging process %s ends", run_id, crawl,
                           os.getpid())
            return
        if ids is None:
            return
        if not ids:
            continue
        try:
            stored, statuses, found = judge.batch(ids)
        except Exception as exc:  # noqa: BLE001 — reported back: the crawl process judges the batch itself
            logger.exception("Run %s: could not judge captures %s…", run_id, ids[:3])
            done.put((ids, None, f"{type(exc).__name__}: {str(exc)[:200]}", []))
            continue
        done.put((ids, stored, statuses, found))


class CrawlJudges:
    """The capture handler: hands batches to the judging processes, collects what they did.

    The judging finds the links to the target's other sources on the portal pages it parses
    (``reports_sources``) and hands them to the crawl (the ``crawler.run.sources_found`` signal),
    which records them and fetches the new sites; so the crawl stays open while batches are
    out (``spider_idle``), and what they report is taken every ``POLL_SECONDS``."""

    reports_sources = True
    POLL_SECONDS = 0.25

    def __init__(self, context: Any) -> None:
        settings = context.crawler.settings
        self.context = context
        self.run_id = context.run_id
        self.root = Path(context.archive_root)
        self.workers = max(settings.getint("GOVEVIDENCE_JUDGE_WORKERS", 1), 0)
        self.timeout = settings.getfloat("GOVEVIDENCE_JUDGE_TIMEOUT", 3600.0)
        self.nice = max(settings.getint("GOVEVIDENCE_JUDGE_NICE", 10), 0)
        self.outstanding: dict[tuple[int, ...], float] = {}
        self.findings = 0
        self.statuses: dict[str, int] = {}
        self.failures: list[str] = []
        self.local: _Judge | None = None
        self.processes: list[Any] = []
        self.closing = False
        self._poll: LoopingCall | None = None
        context.crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        if self.workers:
            spawn = multiprocessing.get_context("spawn")
            self.tasks, self.done = spawn.Queue(), spawn.Queue()
            url = context.engine.url.render_as_string(hide_password=False)
            for _ in range(self.workers):
                process = spawn.Process(target=worker_main, args=(url, self.run_id, str(self.root), self.tasks, self.done,
                                                                     self.nice),
                                        name=f"govevidence-judge-{self.run_id}", daemon=True)
                process.start()
                self.processes.append(process)
            logger.info("Run %s: %d judging process(es) beside the crawl (pids %s)", self.run_id, self.workers,
                        ", ".join(str(p.pid) for p in self.processes))

    @classmethod
    def from_run(cls, context: Any) -> "CrawlJudges":
        return cls(context)

    def _poll_tick(self) -> None:
        try:
            self._collect(block=False)
        except Exception:  # noqa: BLE001 — collected again at the next tick or at the end
            logger.exception("Run %s: could not collect what the judging processes did", self.run_id)
        if not self.outstanding and self._poll is not None and self._poll.running:
            self._poll.stop()

    def spider_idle(self) -> None:
        """Keep the crawl open while the judging of stored pages may still name sources to fetch."""
        if not self.workers or self.closing:
            return
        self._collect(block=False)
        if self.outstanding and not any(p.is_alive() for p in self.processes):
            # Every judging process is gone: what they left is judged here, now, so that the
            # sources it finds are still fetched.
            self._judge_leftovers()
        if self.outstanding:
            raise DontCloseSpider

    def _judge_leftovers(self) -> None:
        """Judge in this process the captures handed over whose findings no judging process stored."""
        left = self._unjudged([i for ids in self.outstanding for i in ids])
        if left:
            logger.warning("Run %s: %d capture(s) left by the judging processes are judged in the crawl process",
                           self.run_id, len(left))
            for start in range(0, len(left), 50):
                self._judge_here(left[start:start + 50])
        self.outstanding.clear()

    def _judge_here(self, ids: list[int]) -> None:
        if self.local is None:
            self.local = _Judge(self.context.Session, self.run_id, self.root, discover=True)
        stored, statuses, found = self.local.batch(ids)
        self._count(stored, statuses)
        self._report(found)

    def _report(self, found: list[dict[str, Any]]) -> None:
        """Hand the sources found linked to the crawl, which records them and fetches new sites."""
        if found:  # once the crawl is closing they are recorded, no longer fetched
            self.context.crawler.signals.send_catch_log(signal=sources_found, found=found, fetch=not self.closing)

    def _count(self, stored: int, statuses: dict[str, int]) -> None:
        self.findings += stored
        for status, n in statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n

    def stored(self, capture_ids: list[int]) -> None:
        if not capture_ids:
            return
        if not self.workers:
            self._judge_here(list(capture_ids))
            return
        key = tuple(capture_ids)
        self.outstanding[key] = time.monotonic()
        self.tasks.put(list(capture_ids))
        self._collect(block=False)
        if self._poll is None:
            self._poll = LoopingCall(self._poll_tick)
        if not self._poll.running:
            self._poll.start(self.POLL_SECONDS, now=False)

    def _collect(self, block: bool, wait: float = 0.5) -> bool:
        """Take the workers' answers; True when one arrived."""
        got = False
        while True:
            try:
                ids, stored, statuses, found = self.done.get(block=block, timeout=wait if block else None)
            except queue_module.Empty:
                return got
            got, block = True, False
            self.outstanding.pop(tuple(ids), None)
            if stored is None:  # the worker could not: judged here
                self.failures.append(str(statuses))
                self._judge_here(list(ids))
            else:
                self._count(stored, statuses)
                self._report(found)

    def _unjudged(self, capture_ids: list[int]) -> list[int]:
        """Those of the captures no process stored findings of (one killed after its commit,
        before it answered, has stored them)."""
        if not capture_ids:
            return []
        with self.context.Session() as session:
            judged = set(session.execute(select(Finding.capture_id).where(
                Finding.capture_id.in_(capture_ids), Finding.scope == "page", Finding.judgement_id.is_(None))).scalars())
        return [i for i in capture_ids if i not in judged]

    def close(self) -> dict[str, Any]:
        """Wait until every capture handed over is judged; what was judged, for the run's stats."""
        self.closing = True
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        if self.workers:
            for _ in self.processes:
                self.tasks.put(None)
            deadline = time.monotonic() + self.timeout
            while self.outstanding and time.monotonic() < deadline:
                if not self._collect(block=True) and not any(p.is_alive() for p in self.processes):
                    self._collect(block=False)
                    break  # every worker is gone: what they left is judged below
            for process in self.processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
                elif process.exitcode:
                    self.failures.append(f"judging process {process.pid} exited with {process.exitcode}")
            self._judge_leftovers()
            # Nothing more goes to the processes: a feeder thread must not hold the exit up
            # writing to a pipe a killed process no longer reads.
            self.tasks.cancel_join_thread()
            self.tasks.close()
            self.done.close()
        out: dict[str, Any] = {"govevidence/judged_findings": self.findings,
                               "govevidence/judge_workers": self.workers,
                               "govevidence/judged_statuses": dict(sorted(self.statuses.items()))}
        if self.failures:
            out["govevidence/judge_failures"] = self.failures[:20]
        logger.info("Run %s: %d page findings made by %s", self.run_id, self.findings,
                    f"{self.workers} judging process(es)" if self.workers else f"the crawl process {os.getpid()}")
        return out
