"""Persist what the spiders collect: one crawl run, its page captures and findings.

Writes are batched (Core ``INSERT ... RETURNING`` for many rows at once) because a
commit per page costs more than the fetch on a fast site; a batch is written when full
and at least every ``GOVEVIDENCE_DB_FLUSH_INTERVAL`` seconds (default 1), so a hard kill
loses little. At the end of the run the page findings are rolled up per source and per
target (``govevidence.aggregate``), the manifest is written and, with
``GOVEVIDENCE_TSA_URL`` set, the run is time-stamped (``govevidence.anchor``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from twisted.internet.task import LoopingCall

import govevidence
from crawler.archive import index_rows
from crawler.items import PageRecord, SourceRecord
from db import audit
from db.base import utcnow
from db.models import CrawlRun, PageCapture, Source, Target, WarcRecord
from db.session import data_dir, ensure_schema, get_engine, session_factory
from govevidence import anchor
from govevidence.seal import finding_row, insert_findings, json_safe, rollup
from govevidence.manifest import index_warc_file, verify_warc_file, write_manifest

logger = logging.getLogger(__name__)

RECORDED_SETTINGS = (
    "USER_AGENT", "ROBOTSTXT_OBEY", "CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "DOWNLOAD_DELAY",
    "AUTOTHROTTLE_ENABLED", "DOWNLOAD_TIMEOUT", "RETRY_TIMES", "DOWNLOAD_MAXSIZE", "GOVEVIDENCE_PORTAL_MAX_DEPTH",
    "GOVEVIDENCE_SOURCE_MAX_DEPTH", "GOVEVIDENCE_MAX_PAGES_PER_SOURCE", "GOVEVIDENCE_AUTO_RENDER",
    "GOVEVIDENCE_BROWSER_USER_AGENT",
)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        self.host = {"hostname": socket.gethostname(), "pid": os.getpid()}
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "EvidencePipeline":
        if not crawler.settings.getbool("GOVEVIDENCE_RECORD", True):
            raise NotConfigured  # only `scrapy crawl` records (crawler/commands)
        return cls(crawler)

    # --- run lifecycle -------------------------------------------------------------
    def open_spider(self) -> None:
        ensure_schema(self.engine)
        spider = self.crawler.spider
        with self.Session.begin() as session:
            self._close_dead_runs(session)
            for target in getattr(spider, "targets", []):
                target_id = self._upsert_target(session, target)
                for source in target.sources:
                    self._upsert_source(session, target.code, target_id, source.kind, source.url,
                                        name=source.name, verified=source.verified, origin="registry")
            settings = {name: self.crawler.settings.get(name) for name in RECORDED_SETTINGS}
            run = CrawlRun(
                spider=spider.name,
                software_version=govevidence.__version__,
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
        with self.Session.begin() as session:
            counts = rollup(session, self.run_id)
            run = session.get(CrawlRun, self.run_id)
            run.finished_at = utcnow()
            run.finish_reason = reason
            run.status = {"finished": "finished", "shutdown": "interrupted"}.get(reason, "failed" if "error" in reason else "interrupted")
            run.stats = json_safe({**self.crawler.stats.get_stats(), **counts, **self.host})
            audit.append(session, "crawler", "run.finish", "crawl_runs", run.id, {"run": run.id, "reason": reason, **counts})
        with self.Session.begin() as session:
            manifest = write_manifest(session, self.run_id, self.archive_root)
        logger.info("Run %s: manifest %s", self.run_id, manifest)
        self._seal()

    def _seal(self) -> None:
        """Time-stamp the sealed run with the TSA, if one is configured; never fails the run."""
        tsa_url, ca_file, timeout = anchor.tsa_settings(self.crawler.settings)
        if not tsa_url:
            return
        try:
            with self.Session.begin() as session:
                token = anchor.seal_run(session, self.run_id, self.archive_root, tsa_url, ca_file, timeout)
                status = f"rfc3161 {token.token_file} ({token.gen_time.isoformat() if token.gen_time else 'no time'})"
            logger.info("Run %s: time-stamped, %s", self.run_id, status)
        except Exception as exc:  # an unreachable or broken TSA must not lose the run
            reason = str(exc) if isinstance(exc, anchor.AnchorError) else f"{type(exc).__name__}: {exc}"
            status = f"failed ({reason})"
            logger.warning("Run %s: anchor failed (%s)", self.run_id, reason)
        with self.Session.begin() as session:
            run = session.get(CrawlRun, self.run_id)
            run.stats = {**(run.stats or {}), "anchor": status}

    def _close_dead_runs(self, session: Session) -> None:
        """Runs left 'running' by a process on this host that no longer exists were killed:
        mark them interrupted and say whether their WARC files are torn."""
        for run in session.execute(select(CrawlRun).where(CrawlRun.status == "running")).scalars():
            host = run.stats or {}
            if host.get("hostname") != self.host["hostname"] or _alive(host.get("pid")):
                continue
            torn: list[str] = []
            recovered = 0
            for path in sorted((self.archive_root / "warc").glob(f"run-{run.id:05d}/*.warc.gz")):
                label = str(path.relative_to(self.archive_root))
                torn += verify_warc_file(path, label)
                recovered += self._reindex(session, run.id, path, label)
            run.status, run.finish_reason = "interrupted", "killed"
            run.stats = {**host, "truncated_warc": torn, "recovered_warc_records": recovered}
            for problem in torn:
                logger.warning("Run %s was killed: %s", run.id, problem)
            if recovered:
                logger.warning("Run %s was killed: %d WARC record(s) indexed again from its files", run.id, recovered)
            audit.append(session, "crawler", "run.killed", "crawl_runs", run.id,
                         {"run": run.id, "truncated_warc": torn, "recovered_warc_records": recovered})

    @staticmethod
    def _reindex(session: Session, run_id: int, path: Path, label: str) -> int:
        """Index the complete records of a dead run's WARC file that its index lacks."""
        known = set(session.execute(
            select(WarcRecord.record_id).where(WarcRecord.run_id == run_id, WarcRecord.warc_file == label)).scalars())
        batch: list[dict[str, Any]] = []
        count = 0
        for row in index_warc_file(path, label):
            if row["record_id"] in known:
                continue
            batch.append(row)
            if len(batch) >= 500:
                count += len(index_rows(session, run_id, batch, recovered=True))
                batch = []
        return count + len(index_rows(session, run_id, batch, recovered=True))

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
