"""Persist what the spiders collect, one pipeline per kind of item, into the run that
``crawler.run.RunContext`` holds.

``CapturePipeline`` writes page captures in batches (Core ``INSERT ... RETURNING`` for many
rows at once: a commit per page costs more than the fetch on a fast site); a batch is written
when full and at least every ``GOVEVIDENCE_DB_FLUSH_INTERVAL`` seconds (default 1), so a hard
kill loses little. Each capture is chained in the audit log (``capture.add``). The WARC index
rows of a batch are written first, so whoever reads a capture's pointers finds its records;
then the run's capture handlers are told the batch's ids (the judging step makes the findings).

``SourcePipeline`` writes the evaluation sources found on portals.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import insert
from twisted.internet.task import LoopingCall

from crawler.addon import recording
from crawler.items import PageRecord, SourceRecord
from crawler.run import RunContext
from db import audit
from db.models import PageCapture

logger = logging.getLogger(__name__)


def run_context(crawler: Crawler) -> RunContext:
    context = crawler.get_extension(RunContext)
    if context is None:
        raise NotConfigured("no crawler.run.RunContext in EXTENSIONS: nothing to record into")
    return context


class CapturePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.batch_size = crawler.settings.getint("GOVEVIDENCE_DB_BATCH", 50)
        self.interval = crawler.settings.getfloat("GOVEVIDENCE_DB_FLUSH_INTERVAL", 1.0)
        self.buffer: list[PageRecord] = []
        self.ticker: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CapturePipeline":
        if not recording(crawler.settings):
            raise NotConfigured  # only `scrapy crawl` records (crawler/commands)
        return cls(crawler)

    def open_spider(self) -> None:
        self.run = run_context(self.crawler)
        self.run.open()
        if self.interval > 0:
            self.ticker = LoopingCall(self._tick)
            self.ticker.start(self.interval, now=False)

    def _tick(self) -> None:
        try:
            self.flush()
        except Exception:  # keep ticking: the next batch may well go through
            logger.exception("Could not write page records of run %s", self.run.run_id)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, PageRecord):
            self.buffer.append(item)
            if len(self.buffer) >= self.batch_size:
                self.flush()
        return item

    def close_spider(self) -> None:
        if self.ticker is not None and self.ticker.running:
            self.ticker.stop()
        self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        from crawler.archive import WarcArchive

        archive = self.crawler.get_extension(WarcArchive)
        if archive is not None:
            archive.flush()  # the index rows the captures point at
        records, self.buffer = self.buffer, []
        run_id = self.run.run_id
        with self.run.Session.begin() as session:
            rows = []
            for record in records:
                row = dataclasses.asdict(record)
                target_code, kind, source_url = row.pop("target_code"), row.pop("source_kind"), row.pop("source_url")
                row["source_id"] = self.run.source_id(session, target_code, kind, source_url)
                row["run_id"] = run_id
                rows.append(row)
            ids = session.execute(
                insert(PageCapture).returning(PageCapture.id, sort_by_parameter_order=True), rows
            ).scalars().all()
            entries = []
            for capture_id, row in zip(ids, rows):
                row["id"] = capture_id
                entries.append(("capture.add", "page_captures", capture_id,
                                {"run": run_id, "sha256": audit.row_digest(PageCapture.__table__, row)}))
            audit.append_many(session, "crawler", entries)
        self.run.stored(list(ids))


class SourcePipeline:
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "SourcePipeline":
        if not recording(crawler.settings):
            raise NotConfigured
        pipeline = cls()
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self) -> None:
        self.run = run_context(self.crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SourceRecord):
            self.run.record_source(item)
        return item
