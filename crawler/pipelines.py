"""Persist what the spiders collect: one crawl run, its page captures and findings.

Writes are batched (Core ``INSERT ... RETURNING`` for many rows at once) because a
commit per page costs more than the fetch on a fast site; a batch is written when full
and at least every ``GOVEVIDENCE_DB_FLUSH_INTERVAL`` seconds (default 1), so a hard kill
loses little.

What ends a run beyond the plumbing — roll-ups, manifest, time-stamp — is not done here:
once the last captures are written and the WARC files closed, the pipeline calls each
callable named in ``GOVEVIDENCE_RUN_FINISHERS`` (loaded with Scrapy's ``load_object``) as
``finisher(session_factory, run_id, archive_root, settings, reason=…, stats=…)``. A
finisher closes the run's row (status, stats); a run still ``running`` afterwards — no
finisher configured, or one failed — is closed here, unsealed, so ``govevidence seal RUN``
can seal it later.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from twisted.internet.task import LoopingCall

from crawler.addon import recording, software_version
from crawler.items import PageRecord, SourceRecord
from crawler.recovery import close_dead_runs, this_host
from db import audit
from db.findings import finding_row, insert_findings, json_safe
from db.models import CrawlRun, PageCapture, Source, Target
from db.runs import close_run
from db.session import data_dir, ensure_schema, get_engine, session_factory

logger = logging.getLogger(__name__)

RECORDED_SETTINGS = (
    "USER_AGENT", "ROBOTSTXT_OBEY", "CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "DOWNLOAD_DELAY",
    "AUTOTHROTTLE_ENABLED", "DOWNLOAD_TIMEOUT", "RETRY_TIMES", "DOWNLOAD_MAXSIZE", "GOVEVIDENCE_PORTAL_MAX_DEPTH",
    "GOVEVIDENCE_SOURCE_MAX_DEPTH", "GOVEVIDENCE_MAX_PAGES_PER_SOURCE", "GOVEVIDENCE_AUTO_RENDER",
    "GOVEVIDENCE_BROWSER_USER_AGENT",
)


def load_finishers(settings: Any) -> list[tuple[str, Any]]:
    """(name, callable) of each ``GOVEVIDENCE_RUN_FINISHERS`` entry; a name that does not load
    is a configuration error, said in one line before the run starts."""
    finishers = []
    for name in settings.getlist("GOVEVIDENCE_RUN_FINISHERS"):
        if not name:  # `-s GOVEVIDENCE_RUN_FINISHERS=` configures none
            continue
        try:
            finisher = load_object(name) if isinstance(name, str) else name
        except (ImportError, NameError, AttributeError, ValueError) as exc:
            raise ValueError(f"GOVEVIDENCE_RUN_FINISHERS：无法载入 {name!r}（{type(exc).__name__}: {exc}）") from None
        if not callable(finisher):
            raise ValueError(f"GOVEVIDENCE_RUN_FINISHERS：{name!r} 不可调用")
        finishers.append((name if isinstance(name, str) else repr(name), finisher))
    return finishers


class EvidencePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.batch_size = crawler.settings.getint("GOVEVIDENCE_DB_BATCH", 50)
        self.engine = get_engine(crawler.settings.get("DATABASE_URL") or None)
        self.Session = session_factory(crawler.settings.get("DATABASE_URL") or None)
        self.run_id: int | None = None
        self.buffer: list[PageRecord] = []
        self.target_ids: dict[str, int] = {}
        self.source_ids: dict[tuple[str, str, str], int] = {}
        self.archive_root = Path(crawler.settings.get("GOVEVIDENCE_ARCHIVE_DIR") or data_dir())
        self.host = this_host()
        self.finishers = load_finishers(crawler.settings)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "EvidencePipeline":
        if not recording(crawler.settings):
            raise NotConfigured  # only `scrapy crawl` records (crawler/commands)
        return cls(crawler)

    # --- run lifecycle -------------------------------------------------------------
    def open_spider(self) -> None:
        ensure_schema(self.engine)
        spider = self.crawler.spider
        with self.Session.begin() as session:
            close_dead_runs(session, self.archive_root, self.host["hostname"])
            for target in getattr(spider, "targets", []):
                target_id = self._upsert_target(session, target)
                for source in target.sources:
                    self._upsert_source(session, target.code, target_id, source.kind, source.url,
                                        name=source.name, verified=source.verified, origin="registry")
            settings = {name: self.crawler.settings.get(name) for name in RECORDED_SETTINGS}
            run = CrawlRun(
                spider=spider.name,
                software_version=software_version(),
                registry_file=str(getattr(spider, "registry_file", "") or ""),
                settings=json_safe(settings),
                stats=dict(self.host),
            )
            session.add(run)
            session.flush()
            self.run_id = run.id
            audit.append(session, "crawler", "run.start", "crawl_runs", run.id, {"spider": spider.name})
        spider.run_id = self.run_id
        logger.info("Recording crawl run %s into %s", self.run_id, self.engine.url.render_as_string())
        interval = self.crawler.settings.getfloat("GOVEVIDENCE_DB_FLUSH_INTERVAL", 1.0)
        if interval > 0:
            self.ticker = LoopingCall(self._tick)
            self.ticker.start(interval, now=False)

    def _tick(self) -> None:
        try:
            self.flush()
        except Exception:  # keep ticking: the next batch may well go through
            logger.exception("Could not write page records of run %s", self.run_id)

    def _stop_ticker(self) -> None:
        ticker = getattr(self, "ticker", None)
        if ticker is not None and ticker.running:
            ticker.stop()

    def process_item(self, item: Any) -> Any:
        if isinstance(item, PageRecord):
            self.buffer.append(item)
            if len(self.buffer) >= self.batch_size:
                self.flush()
        elif isinstance(item, SourceRecord):
            with self.Session.begin() as session:
                self._upsert_source(session, item.target_code, self.target_ids[item.target_code], item.kind, item.url,
                                    origin="discovered", anchor_text=item.anchor_text, discovered_on=item.discovered_on)
        return item

    def close_spider(self) -> None:
        self._stop_ticker()
        self.flush()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is None:
            return
        self._stop_ticker()
        self.flush()
        archive = getattr(self.crawler, "archive", None)
        if archive is not None:
            archive.finish()  # the manifest hashes closed WARC files
        stats = {**self.crawler.stats.get_stats(), **self.host}
        failures: list[str] = []
        for name, finisher in self.finishers:
            try:
                finisher(self.Session, self.run_id, self.archive_root, self.crawler.settings, reason=reason, stats=stats)
            except Exception as exc:  # the captures are stored: the run is closed below and can be sealed later
                logger.exception("Run %s: finisher %s failed", self.run_id, name)
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        with self.Session.begin() as session:
            run = session.get(CrawlRun, self.run_id)
            unsealed = f"failed ({'; '.join(failures)})"[:500] if failures else "no (no finisher)"
            if run.status == "running":
                close_run(session, self.run_id, reason, {**stats, "sealed": unsealed})
                logger.warning("Run %s closed unsealed: `govevidence seal %s` rolls it up and writes its manifest",
                               self.run_id, self.run_id)
            elif failures:
                run.stats = {**(run.stats or {}), "sealed": unsealed}

    # --- writing ---------------------------------------------------------------------
    def flush(self) -> None:
        if not self.buffer or self.run_id is None:
            return
        records, self.buffer = self.buffer, []
        with self.Session.begin() as session:
            rows = []
            for record in records:
                row = dataclasses.asdict(record)
                row.pop("findings")
                target_code, kind, source_url = row.pop("target_code"), row.pop("source_kind"), row.pop("source_url")
                row["source_id"] = self._source_id(session, target_code, kind, source_url)
                row["run_id"] = self.run_id
                rows.append(row)
            ids = session.execute(
                insert(PageCapture).returning(PageCapture.id, sort_by_parameter_order=True), rows
            ).scalars().all()
            findings: list[dict[str, Any]] = []
            owners: list[int] = []
            for record, capture_id, row in zip(records, ids, rows):
                row["id"] = capture_id
                for finding in record.findings:
                    findings.append(finding_row(
                        finding, run_id=self.run_id, target_id=self.target_ids[record.target_code],
                        source_id=row["source_id"], capture_id=capture_id, scope="page"))
                    owners.append(capture_id)
            digests = insert_findings(session, findings)
            per_capture: dict[int, dict[str, str]] = {capture_id: {} for capture_id in ids}
            for owner, (finding_id, digest) in zip(owners, digests):
                per_capture[owner][str(finding_id)] = digest
            audit.append_many(session, "crawler", [
                ("capture.add", "page_captures", row["id"],
                 {"run": self.run_id, "sha256": audit.row_digest(PageCapture.__table__, row),
                  "findings": per_capture[row["id"]]})
                for row in rows
            ])

    def _upsert_target(self, session: Session, target: Any) -> int:
        row = session.execute(select(Target).where(Target.code == target.code)).scalar_one_or_none()
        if row is None:
            row = Target(code=target.code, name=target.name, level=target.level, parent_code=target.parent)
            session.add(row)
        else:
            row.name, row.level, row.parent_code = target.name, target.level, target.parent
        session.flush()
        self.target_ids[target.code] = row.id
        return row.id

    def _upsert_source(self, session: Session, target_code: str, target_id: int, kind: str, url: str, *,
                       origin: str, name: str | None = None, verified: bool = False,
                       anchor_text: str | None = None, discovered_on: str | None = None) -> int:
        row = session.execute(
            select(Source).where(Source.target_id == target_id, Source.kind == kind, Source.url == url)
        ).scalar_one_or_none()
        if row is None:
            row = Source(target_id=target_id, kind=kind, url=url, name=name, verified=verified, origin=origin,
                         anchor_text=anchor_text, discovered_on=discovered_on, first_seen_run_id=self.run_id)
            session.add(row)
        elif origin == "registry":
            row.name, row.verified, row.origin = name, verified, "registry"
        session.flush()
        self.source_ids[(target_code, kind, url)] = row.id
        return row.id

    def _source_id(self, session: Session, target_code: str, kind: str, url: str) -> int:
        key = (target_code, kind, url)
        if key not in self.source_ids:
            self._upsert_source(session, target_code, self.target_ids[target_code], kind, url, origin="discovered")
        return self.source_ids[key]
