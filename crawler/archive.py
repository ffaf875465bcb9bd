"""Extension: archive every download in WARC, as received, and index the records.

Listens to ``response_downloaded``, which fires before the downloader middlewares
decompress the body, so the archived bytes are the bytes the server sent. A response
rendered by the browser (scrapy-playwright marks it with the ``playwright`` flag) is
the rendered DOM, not what the server sent: it is archived as a ``resource`` record
under ``urn:rendered:<url>``. The record's pointer is put in ``request.meta["warc"]``
for the spider to attach to its capture.

A payload already archived (in this run or an earlier one) is written as a
``revisit`` record pointing at the original instead of being stored again.

Index rows are written in batches — at 200 pending rows, and at least every
``GOVEVIDENCE_INDEX_FLUSH_INTERVAL`` seconds (default 1) — and each batch is chained in
the audit log with every row's digest. Records a hard kill left out of the index are
indexed again from the files when the next crawl closes the dead run.
"""

from __future__ import annotations

import hashlib
import logging
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.http import Response
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from twisted.internet.task import LoopingCall

from crawler.addon import recording, software_version
from crawler.warc import RecordPointer, RotatingWarcWriter, utc_timestamp
from db import audit
from db.models import WarcRecord
from db.session import data_dir, ensure_schema, get_engine, session_factory

logger = logging.getLogger(__name__)

# Hop-by-hop framing the archived body no longer has (Scrapy removed the chunking).
_RENAMED_HEADERS = {"transfer-encoding"}
BATCH = 200


def index_rows(session: Session, run_id: int, rows: list[dict[str, Any]], recovered: bool = False) -> list[int]:
    """Insert ``warc_records`` rows of a run and chain their digests in one audit entry;
    returns their ids. ``recovered``: rows read back from the files after a hard kill."""
    if not rows:
        return []
    rows = [{**row, "run_id": run_id} for row in rows]
    ids = session.execute(insert(WarcRecord).returning(WarcRecord.id, sort_by_parameter_order=True), rows).scalars().all()
    digests = {}
    for record_id, row in zip(ids, rows):
        row["id"] = record_id
        digests[str(record_id)] = audit.row_digest(WarcRecord.__table__, row)
    data: dict[str, Any] = {"run": run_id, "records": digests}
    if recovered:
        data["recovered"] = True
    audit.append_many(session, "crawler", [("warc.index", "warc_records", None, data)])
    return list(ids)


def _headers(headers: Any) -> list[tuple[str, str]]:
    out = []
    for name, values in headers.items():
        key = name.decode("latin-1")
        if key.lower() in _RENAMED_HEADERS:
            key = f"X-Archive-Orig-{key}"
        for value in values:
            out.append((key, value.decode("latin-1")))
    return out


class WarcArchive:
    def __init__(self, crawler: Crawler, root: Path, max_size: int) -> None:
        self.crawler = crawler
        self.root = root
        self.max_size = max_size
        self.writer: RotatingWarcWriter | None = None
        self.run_id: int | None = None
        self.Session = session_factory(crawler.settings.get("DATABASE_URL") or None)
        self.engine = get_engine(crawler.settings.get("DATABASE_URL") or None)
        self.pending: list[dict[str, Any]] = []
        self.seen: dict[str, dict[str, str]] = {}
        self.records = 0
        self.revisits = 0
        self._ticker: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "WarcArchive":
        settings = crawler.settings
        if not recording(settings):
            raise NotConfigured  # only `scrapy crawl` records (crawler/commands)
        if not settings.getbool("GOVEVIDENCE_WARC_ENABLED", True):
            raise NotConfigured("WARC archiving disabled")
        root = Path(settings.get("GOVEVIDENCE_ARCHIVE_DIR") or data_dir())
        archive = cls(crawler, root, settings.getint("GOVEVIDENCE_WARC_MAX_SIZE", 1024**3))

        def spider_opened(spider: Spider) -> None:
            try:
                archive.spider_opened(spider)
            except OSError as exc:  # the WARC folder cannot be written: the run fails, saying why
                crawler.stats.set_value("govevidence/error", f"WARC 目录无法写入（{root / 'warc'}）：{exc.strerror or exc}")
                raise CloseSpider("archive_error") from None

        crawler.signals.connect(spider_opened, signal=signals.spider_opened, weak=False)
        crawler.signals.connect(archive.response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(archive.spider_closed, signal=signals.spider_closed)
        return archive

    # --- lifecycle ------------------------------------------------------------------------
    def spider_opened(self, spider: Spider) -> None:
        from crawler.run import RunContext

        ensure_schema(self.engine)
        context = self.crawler.get_extension(RunContext)
        self.run_id = context.run_id if context is not None else None
        self._load_known_digests()
        stamp = utc_timestamp()
        run = f"{self.run_id:05d}" if self.run_id else stamp
        # Workers of one run write into one folder: the worker number keeps their files apart.
        worker = getattr(context, "worker_id", None)
        prefix = f"GOVEVIDENCE-{run}-{stamp}" + (f"-w{worker}" if worker else "")
        settings = self.crawler.settings
        info = {
            "software": f"GovEvidence/{software_version()} (Scrapy)",
            "format": "WARC File Format 1.1",
            "conformsTo": "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "isPartOf": f"govevidence-run-{self.run_id}",
            "spider": spider.name,
            "robots": "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore",
            "http-header-user-agent": str(settings.get("USER_AGENT") or ""),
            "depth": f"portal {settings.getint('GOVEVIDENCE_PORTAL_MAX_DEPTH')}, other sources "
                     f"{settings.getint('GOVEVIDENCE_SOURCE_MAX_DEPTH')}",
            "max-pages-per-source": str(settings.getint("GOVEVIDENCE_MAX_PAGES_PER_SOURCE")),
        }
        self.writer = RotatingWarcWriter(self.root, f"warc/run-{run}", prefix,
                                         self.max_size, info)
        # A hard kill loses at most this many seconds of index rows (and the next crawl reads them back).
        interval = settings.getfloat("GOVEVIDENCE_INDEX_FLUSH_INTERVAL", 1.0)
        if interval > 0:
            self._ticker = LoopingCall(self._tick)
            self._ticker.start(interval, now=False)

    def _tick(self) -> None:
        try:
            self.flush()
        except Exception:  # keep ticking; the rows are indexed again from the files if need be
            logger.exception("Could not index WARC records")

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.finish()

    def finish(self) -> None:
        """Index what is pending and close the current file; safe to call twice."""
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self.flush()
        if self.writer:
            self.writer.close()
        self.crawler.stats.set_value("govevidence/warc_records", self.records)
        self.crawler.stats.set_value("govevidence/warc_revisits", self.revisits)
        self.crawler.stats.set_value("govevidence/warc_files", len(self.writer.files) if self.writer else 0)

    # --- records ---------------------------------------------------------------------------
    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        if self.writer is None:
            return
        try:
            if "playwright" in response.flags:
                pointer = self.writer.write_resource(f"urn:rendered:{response.url}", "text/html; charset=utf-8",
                                                     response.body)
                self._index(pointer)
                request_pointer = None
            else:
                pointer, request_pointer = self._write_exchange(request, response)
        except OSError:  # a full disk must not lose the rest of the run's evidence
            logger.exception("Could not archive %s", response.url)
            return
        request.meta["warc"] = pointer.to_dict()
        if request_pointer is not None:  # the request record paired with the response
            request.meta["warc"]["request_record_id"] = request_pointer.record_id

    def _write_exchange(self, request: Request, response: Response) -> tuple[RecordPointer, RecordPointer]:
        digest = hashlib.sha256(response.body).hexdigest()
        original = self.seen.get(digest) or self._lookup(digest)
        headers = _headers(request.headers)
        if not any(k.lower() == "host" for k, _ in headers):
            headers.insert(0, ("Host", urlsplit(request.url).netloc))
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        pointer, request_pointer = self.writer.write_exchange(
            response.url, method=request.method, request_headers=headers, request_body=request.body or b"",
            protocol=response.protocol or "HTTP/1.1", status=response.status, reason=reason,
            response_headers=_headers(response.headers), body=response.body, revisit_of=original,
        )
        self._index(pointer, refers_to=original["record_id"] if original else None)
        self._index(request_pointer)
        if original:
            self.revisits += 1
        else:
            self.seen[digest] = {"record_id": pointer.record_id, "target_uri": pointer.target_uri,
                                 "warc_date": pointer.warc_date}
        return pointer, request_pointer

    def write_resource(self, uri: str, content_type: str, payload: bytes, concurrent_to: str | None = None) -> str | None:
        """Archive a derived artefact (screenshot, extracted text) as a ``resource`` record;
        returns its WARC-Record-ID (None when archiving is off), which the row naming the
        artefact keeps as its pointer."""
        if self.writer is None:
            return None
        pointer = self.writer.write_resource(uri, content_type, payload, concurrent_to)
        self._index(pointer)
        return pointer.record_id

    def _load_known_digests(self) -> None:
        """The payload digests of the responses archived before this run, read once: a
        response whose digest is not among them (nor among this run's) is archived in full
        without asking the database."""
        self.known: set[bytes] = set()
        with self.Session() as session:
            for (digest,) in session.execute(
                    select(WarcRecord.payload_sha256).where(WarcRecord.record_type == "response")
                    .execution_options(yield_per=10_000)):
                try:
                    self.known.add(bytes.fromhex(digest))
                except (TypeError, ValueError):
                    continue

    def _lookup(self, digest: str) -> dict[str, str] | None:
        if not digest or self.run_id is None or bytes.fromhex(digest) not in self.known:
            return None
        with self.Session() as session:
            row = session.execute(
                select(WarcRecord.record_id, WarcRecord.target_uri, WarcRecord.warc_date)
                .where(WarcRecord.payload_sha256 == digest, WarcRecord.record_type == "response")
                .order_by(WarcRecord.id).limit(1)
            ).first()
        return dict(row._mapping) if row else None

    def _index(self, pointer: RecordPointer, refers_to: str | None = None) -> None:
        self.records += 1
        self.pending.append({
            "run_id": self.run_id, "warc_file": pointer.warc_file, "record_id": pointer.record_id,
            "record_type": pointer.record_type, "target_uri": pointer.target_uri, "warc_date": pointer.warc_date,
            "offset": pointer.offset, "length": pointer.length, "payload_sha256": pointer.payload_sha256,
            "refers_to": refers_to,
        })
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending or self.run_id is None:
            return
        rows, self.pending = self.pending, []
        with self.Session.begin() as session:
            index_rows(session, self.run_id, rows)
