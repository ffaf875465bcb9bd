"""The crawl run this process records into: one component the others reach with
``crawler.get_extension(RunContext)``.

A crawl process either creates a run (the default) or joins one that several workers share
(``GOVEVIDENCE_RUN_ID``; made by ``govevidence run open --workers N``). Either way it registers
itself as one of the run's workers (``run_workers``), writes the run's targets and registered
sources, and keeps their ids.

Captures are judged as they are stored, outside the crawl's hot path: each dotted name in
``GOVEVIDENCE_CAPTURE_HANDLERS`` (loaded with Scrapy's ``load_object``) is built as
``handler_class.from_run(context)`` when the run opens, told the ids of each batch of stored
captures (``stored(ids)``), and closed (``close()``, which returns once every capture handed to
it is dealt with) when the spider closes. Then the worker is marked finished, and the last
worker of the run calls the ``GOVEVIDENCE_RUN_FINISHERS`` (roll-ups, manifest, time-stamp) as
``finisher(session_factory, run_id, archive_root, settings, reason=…, stats=…)``. A run still
``running`` after that — no finisher, or one failed — is closed here, unsealed, so
``govevidence seal RUN`` can seal it later. Workers that are not the last leave the run running.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crawler.addon import recording, software_version
from crawler.recovery import close_dead_runs, this_host
from db import audit
from db.base import utcnow
from db.findings import json_safe
from db.models import CrawlRun, RunWorker, Source, Target
from db.runs import close_run
from db.session import data_dir, ensure_schema, get_engine, session_factory

logger = logging.getLogger(__name__)

RECORDED_SETTINGS = (
    "USER_AGENT", "ROBOTSTXT_OBEY", "CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "DOWNLOAD_DELAY",
    "AUTOTHROTTLE_ENABLED", "DOWNLOAD_TIMEOUT", "RETRY_TIMES", "DOWNLOAD_MAXSIZE", "GOVEVIDENCE_PORTAL_MAX_DEPTH",
    "GOVEVIDENCE_SOURCE_MAX_DEPTH", "GOVEVIDENCE_MAX_PAGES_PER_SOURCE", "GOVEVIDENCE_AUTO_RENDER",
    "GOVEVIDENCE_RENDER_CHALLENGES", "GOVEVIDENCE_BROWSER_USER_AGENT", "GOVEVIDENCE_SCREENSHOTS",
)


class RunError(ValueError):
    """The run cannot be opened or joined; the message says why (one line)."""


def _load_named(settings: Any, name: str) -> list[tuple[str, Any]]:
    """(name, object) of each dotted name of a list setting; one that does not load is a
    configuration error, said in one line before the run starts."""
    out = []
    for entry in settings.getlist(name):
        if not entry:  # `-s NAME=` configures none
            continue
        try:
            obj = load_object(entry) if isinstance(entry, str) else entry
        except (ImportError, NameError, AttributeError, ValueError) as exc:
            raise ValueError(f"{name}：无法载入 {entry!r}（{type(exc).__name__}: {exc}）") from None
        if not callable(obj):
            raise ValueError(f"{name}：{entry!r} 不可调用")
        out.append((entry if isinstance(entry, str) else repr(entry), obj))
    return out


def load_finishers(settings: Any) -> list[tuple[str, Any]]:
    return _load_named(settings, "GOVEVIDENCE_RUN_FINISHERS")


def upsert(session: Session, model: Any, values: dict[str, Any], keys: tuple[str, ...]) -> int:
    """Insert a row unless one with the same ``keys`` exists (another worker may insert it at
    the same moment); returns its id."""
    table = model.__table__
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(make(table).values(**values).on_conflict_do_nothing(index_elements=list(keys)))
    where = [getattr(model, key) == values[key] for key in keys]
    found = session.execute(select(model.id).where(*where)).scalar_one_or_none()
    if found is None:  # another database: plain insert
        session.execute(table.insert().values(**values))
        found = session.execute(select(model.id).where(*where)).scalar_one()
    return found


def create_run(session: Session, spider: str, settings: Any, *, workers: int = 1, stats: dict[str, Any] | None = None,
               registry_file: str = "", actor: str = "crawler") -> CrawlRun:
    """A new ``running`` run with the settings that shape what it collects; ``workers`` crawl
    processes are to share it (each joins with ``GOVEVIDENCE_RUN_ID``)."""
    if workers < 1:
        raise RunError(f"workers 须为正整数，而不是 {workers}")
    recorded = {name: settings.get(name) for name in RECORDED_SETTINGS}
    run = CrawlRun(spider=spider, software_version=software_version(), registry_file=registry_file,
                   settings=json_safe(recorded), stats=dict(stats or {}), workers=workers)
    session.add(run)
    session.flush()
    audit.append(session, actor, "run.start", "crawl_runs", run.id, {"spider": spider, "workers": workers}
                 if workers > 1 else {"spider": spider})
    return run


# Sent by a capture handler that finds, on the stored pages it judges, links to the target's
# other sources (``reports_sources``), with ``found``: a list of plain dicts (``source``: the
# key of the page's source, ``page_url``, ``kind``, ``url``, ``anchor_text``) and ``fetch``:
# False once the crawl is closing (then they are only recorded). The spider records them
# (``RunContext.record_source``) and fetches the new sites.
sources_found = object()


class RunContext:
    """The run, its targets and sources, the capture handlers and the end of the run."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        url = settings.get("DATABASE_URL") or None
        self.engine = get_engine(url)
        self.Session = session_factory(url)
        self.archive_root = Path(settings.get("GOVEVIDENCE_ARCHIVE_DIR") or data_dir())
        self.host = this_host()
        self.finishers = load_finishers(settings)
        self.handler_classes = _load_named(settings, "GOVEVIDENCE_CAPTURE_HANDLERS")
        self.handlers: list[tuple[str, Any]] = []
        joined = settings.get("GOVEVIDENCE_RUN_ID")
        try:
            self.joined: int | None = int(joined) if joined not in (None, "") else None
        except ValueError:
            raise ValueError(f"GOVEVIDENCE_RUN_ID：{joined!r} 不是运行编号") from None
        if self.joined is not None:
            self._check_joinable(crawler.spidercls.name)
        self._run_id: int | None = None
        self.worker_id: int | None = None
        self.target_ids: dict[str, int] = {}
        self.source_ids: dict[tuple[str, str, str], int] = {}
        self.closed = False
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    def _check_joinable(self, spider: str) -> None:
        """Refuse, before the crawl starts, a run that does not exist, has ended or is another spider's."""
        ensure_schema(self.engine)
        with self.Session() as session:
            self._refuse_unjoinable(session.get(CrawlRun, self.joined), spider)

    def _refuse_unjoinable(self, run: CrawlRun | None, spider: str) -> None:
        if run is None:
            raise RunError(f"GOVEVIDENCE_RUN_ID：运行 {self.joined} 不存在")
        if run.status != "running":
            raise RunError(f"GOVEVIDENCE_RUN_ID：运行 {self.joined} 已结束（{run.status}）")
        if run.spider != spider:
            raise RunError(f"GOVEVIDENCE_RUN_ID：运行 {self.joined} 属于爬虫 {run.spider}，不是 {spider}")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RunContext":
        if not recording(crawler.settings):
            raise NotConfigured  # only `scrapy crawl` records (crawler/commands)
        return cls(crawler)

    @property
    def run_id(self) -> int:
        """The run's id; the run is opened (created or joined) on first use."""
        if self._run_id is None:
            self.open()
        assert self._run_id is not None
        return self._run_id

    @property
    def opened_run_id(self) -> int | None:
        """The run's id if it was opened, without opening it."""
        return self._run_id

    # --- opening --------------------------------------------------------------------------
    def open(self) -> None:
        if self._run_id is not None:
            return
        ensure_schema(self.engine)
        spider = self.crawler.spider
        with self.Session.begin() as session:
            close_dead_runs(session, self.archive_root, self.host["hostname"])
            if self.joined is None:
                run = create_run(session, spider.name, self.crawler.settings, stats=dict(self.host),
                                 registry_file=str(getattr(spider, "registry_file", "") or ""))
            else:
                run = session.get(CrawlRun, self.joined)
                self._refuse_unjoinable(run, spider.name)
            worker = RunWorker(run_id=run.id, hostname=self.host["hostname"], pid=self.host["pid"], stats={})
            session.add(worker)
            session.flush()
            self._run_id, self.worker_id = run.id, worker.id
            if self.joined is not None:
                audit.append(session, "crawler", "run.join", "crawl_runs", run.id,
                             {"run": run.id, "worker": worker.id, **self.host})
            for target in getattr(spider, "targets", []):
                target_id = self._upsert_target(session, target)
                for source in target.sources:
                    self._upsert_source(session, target.code, target_id, source.kind, source.url, origin="registry",
                                        name=source.name, verified=source.verified)
        logger.info("Recording crawl run %s into %s%s", self._run_id, self.engine.url.render_as_string(),
                    f" (worker {self.worker_id})" if self.joined is not None else "")
        for name, cls in self.handler_classes:
            self.handlers.append((name, cls.from_run(self)))

    def _upsert_target(self, session: Session, target: Any) -> int:
        target_id = upsert(session, Target, {"code": target.code, "name": target.name, "level": target.level,
                                             "parent_code": target.parent}, ("code",))
        session.execute(update(Target).where(Target.id == target_id)
                        .values(name=target.name, level=target.level, parent_code=target.parent))
        self.target_ids[target.code] = target_id
        return target_id

    def _upsert_source(self, session: Session, target_code: str, target_id: int, kind: str, url: str, *,
                       origin: str, name: str | None = None, verified: bool = False,
                       anchor_text: str | None = None, discovered_on: str | None = None) -> int:
        source_id = upsert(session, Source, {
            "target_id": target_id, "kind": kind, "url": url, "name": name, "verified": verified, "origin": origin,
            "anchor_text": anchor_text, "discovered_on": discovered_on, "first_seen_run_id": self._run_id,
        }, ("target_id", "kind", "url"))
        if origin == "registry":
            session.execute(update(Source).where(Source.id == source_id)
                            .values(name=name, verified=verified, origin="registry"))
        self.source_ids[(target_code, kind, url)] = source_id
        return source_id

    def source_id(self, session: Session, target_code: str, kind: str, url: str, **found: Any) -> int:
        """The id of a source of the run's targets; one not seen yet is stored as discovered."""
        key = (target_code, kind, url)
        if key not in self.source_ids:
            self._upsert_source(session, target_code, self.target_ids[target_code], kind, url,
                                origin="discovered", **found)
        return self.source_ids[key]

    def record_source(self, item: Any) -> int:
        """Store a ``SourceRecord``: a source found linked on one of the run's pages."""
        with self.Session.begin() as session:
            return self.source_id(session, item.target_code, item.kind, item.url,
                                  anchor_text=item.anchor_text, discovered_on=item.discovered_on)

    @property
    def reports_sources(self) -> bool:
        """Whether a capture handler finds the sources the stored pages link to (the judging
        does, on the pages it parses anyway); the spider then does not look for them itself."""
        return any(getattr(handler, "reports_sources", False) for _, handler in self.handlers)

    # --- captures -----------------------------------------------------------------------------
    def stored(self, capture_ids: list[int]) -> None:
        """Tell the capture handlers which captures were just stored (committed)."""
        for name, handler in self.handlers:
            try:
                handler.stored(capture_ids)
            except Exception:  # the captures are stored; the handler's close() says what it missed
                logger.exception("Run %s: capture handler %s failed", self._run_id, name)

    # --- closing ------------------------------------------------------------------------------
    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._run_id is None or self.closed:
            return
        self.closed = True
        from crawler.archive import WarcArchive

        archive = self.crawler.get_extension(WarcArchive)
        if archive is not None:
            archive.finish()  # the manifest hashes closed WARC files
        failures: list[str] = []
        handled: dict[str, Any] = {}
        for name, handler in self.handlers:
            try:
                handled.update(handler.close() or {})
            except Exception as exc:
                logger.exception("Run %s: capture handler %s failed", self._run_id, name)
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        stats = {**self.crawler.stats.get_stats(), **handled, **self.host}
        if not self._finish_worker(reason, stats):
            logger.info("Run %s: worker %s done; the run goes on with its other workers", self._run_id, self.worker_id)
            return
        for name, finisher in self.finishers:
            try:
                finisher(self.Session, self._run_id, self.archive_root, self.crawler.settings, reason=reason, stats=stats)
            except Exception as exc:  # the captures are stored: the run is closed below and can be sealed later
                logger.exception("Run %s: finisher %s failed", self._run_id, name)
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        with self.Session.begin() as session:
            run = session.get(CrawlRun, self._run_id)
            unsealed = f"failed ({'; '.join(failures)})"[:500] if failures else "no (no finisher)"
            if run.status == "running":
                close_run(session, self._run_id, reason, {**stats, "sealed": unsealed})
                logger.warning("Run %s closed unsealed: `govevidence seal %s` rolls it up and writes its manifest",
                               self._run_id, self._run_id)
            elif failures:
                run.stats = {**(run.stats or {}), "sealed": unsealed}

    def _finish_worker(self, reason: str, stats: dict[str, Any]) -> bool:
        """Mark this worker finished; True when it is the run's last (every expected worker
        joined and finished)."""
        with self.Session.begin() as session:
            run = session.execute(select(CrawlRun).where(CrawlRun.id == self._run_id).with_for_update()).scalar_one()
            worker = session.get(RunWorker, self.worker_id)
            worker.finished_at, worker.finish_reason = utcnow(), reason
            worker.stats = json_safe({k: v for k, v in stats.items() if isinstance(k, str) and k.startswith(
                ("downloader/response_count", "item_scraped_count", "govevidence/", "response_received_count"))})
            session.flush()
            joined, unfinished = session.execute(
                select(func.count(RunWorker.id), func.count(RunWorker.id).filter(RunWorker.finished_at.is_(None)))
                .where(RunWorker.run_id == self._run_id)).one()
            if self.joined is not None:
                audit.append(session, "crawler", "run.leave", "crawl_runs", run.id,
                             {"run": run.id, "worker": self.worker_id, "reason": reason})
            return unfinished == 0 and joined >= (run.workers or 1)
