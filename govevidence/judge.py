"""``govevidence judge RUN``: the detectors run again over a run's archived bytes.

A judgement reads every page capture of a run back from the WARC files by the capture's
pointer (``warc_file``, ``warc_offset``) and asks the same pure judgement the crawl asked
(``evidence.judgement.judge``), with the catalogue it is given:

- a ``response`` record holds the body as the server sent it: its Content-Encoding (gzip,
  deflate, br) is decoded with warcio's readers, after its decoded size is measured in
  bounded blocks — past ``DOWNLOAD_MAXSIZE`` (the run's, else 20 MB) the capture is
  ``too_large`` and nothing is held in memory; a gzip/deflate/br stream that ends early is
  ``truncated``, as in the crawl;
- a ``revisit`` record's payload is its original's (``WARC-Refers-To``, through the
  ``warc_records`` index), decoded as the revisit's own headers say;
- a rendered capture is a ``resource`` record ``urn:rendered:<url>`` whose payload is the DOM;
- a capture that failed at fetch time (no answer) gets the findings the crawl gave it
  (``could_not_look`` on a home page); one whose answer is not archived, or whose record
  cannot be read, is ``not_archived`` / ``archive_error`` and every indicator is ``unknown``.

What only the live crawl decided is read from the run: where a home page landed (the crawl's
``site.reachable`` details), which sources were drawn by a browser, whether empty script
shells and challenges were rendered. Pictures of the evidence (``screenshot``,
``evidence_image`` with its WARC record ``evidence_image_record_id``, ``details.picture``) are
carried over from what the crawl pictured of the same capture and indicator when the new
finding is ``present`` at the same locator.

The new page findings carry the judgement's id and are chained in the audit log
(``judgement.findings``); the roll-ups are made by ``govevidence.seal.rollup`` over them.
Nothing of the crawl or of an earlier judgement is changed.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from warcio.archiveiterator import ArchiveIterator

from db import audit
from db.base import utcnow
from db.models import CrawlRun, Finding, Judgement, PageCapture, Source, WarcRecord
from evidence import DETECTOR_VERSION, discover_sources
from evidence.catalogue import CATALOGUE_PATH, Catalogue, CatalogueError, load_catalogue
from evidence.content import compressed_stream_problem, decoded_size
from evidence.judgement import Answer, PageFacts, RenderPolicy, could_not_look, is_html_type, judge
from db.findings import finding_row, insert_findings, json_safe
from govevidence.seal import rollup

logger = logging.getLogger(__name__)

DEFAULT_MAXSIZE = 20 * 1024 * 1024
CHUNK = 1024 * 1024


def _truthy(value: Any, default: bool) -> bool:
    """A recorded Scrapy setting as a bool (settings are stored as given: bools, numbers, strings)."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
BATCH = 100  # captures per audit entry
PICTURE_KEYS = ("screenshot", "evidence_image", "evidence_image_record_id")


class JudgeError(Exception):
    """A run cannot be judged; the message says why (one line)."""


@dataclass
class JudgeResult:
    judgement_id: int
    run_id: int
    captures: int = 0
    from_archive: int = 0
    page_findings: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    changed: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Stored:
    """An answer read back from the archive, or why it could not be."""

    answer: Answer | None = None
    status: str | None = None
    detail: str | None = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _read_bounded(stream: Any, limit: int) -> bytes | None:
    """A stream's bytes, or None once they pass ``limit`` (read in bounded blocks)."""
    out = bytearray()
    while True:
        block = stream.read(CHUNK)
        if not block:
            return bytes(out)
        out += block
        if len(out) > limit:
            return None


def _last_header(http_headers: Any, name: str) -> str | None:
    """The last value of a header (what Scrapy's ``headers.get`` gives), or None."""
    values = [v for k, v in http_headers.headers if k.lower() == name.lower()]
    return values[-1] if values else None


def _codings(http_headers: Any) -> tuple[list[str], str | None]:
    """Every Content-Encoding coding in order, and the last header value (the crawl's check)."""
    values = [v for k, v in http_headers.headers if k.lower() == "content-encoding"]
    codings = [c.strip().lower() for value in values for c in value.split(",") if c.strip()]
    return codings, values[-1] if values else None


def _decode(raw: bytes, codings: list[str], limit: int) -> bytes | None:
    """The body with its content codings undone exactly as the crawl's Scrapy undid them (its
    own choice of codings and decoders, zstd included); None when it decodes past ``limit``.
    The size is counted first in bounded blocks, so a bomb is refused without being held."""
    from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
    from scrapy.utils._compression import _DecompressionMaxSizeExceeded

    to_decode, _kept = HttpCompressionMiddleware._split_encodings([c.encode("latin-1") for c in codings])
    body = raw
    for encoding in to_decode:
        if decoded_size(body, encoding.decode("latin-1"), limit) is None:
            return None
        try:
            body = HttpCompressionMiddleware._decode(body, encoding, limit)
        except _DecompressionMaxSizeExceeded:
            return None
        except Exception:  # noqa: BLE001 — kept as received, as the crawl kept what it could not decode
            break
    return body


def _is_text(headers: list[tuple[str, str]], url: str, body: bytes) -> bool:
    """Whether Scrapy would make a text response of the answer (when it names no type)."""
    from scrapy.http import Headers, TextResponse
    from scrapy.responsetypes import responsetypes

    wanted = [(k, v) for k, v in headers if k.lower() in ("content-type", "content-disposition")]
    return issubclass(responsetypes.from_args(headers=Headers(wanted), url=url, body=body[:5000]), TextResponse)


class _Archive:
    """Reads captures back from a run's WARC files."""

    def __init__(self, session: Session, root: Path, limit: int) -> None:
        self.session, self.root, self.limit = session, Path(root), limit

    def _path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"stored path {relative!r} points outside the data folder")
        return path

    def _open(self, warc_file: str, offset: int, record_id: str | None) -> tuple[Any, Any]:
        fh = open(self._path(warc_file), "rb")
        try:
            fh.seek(offset)
            record = next(iter(ArchiveIterator(fh)))
        except Exception:
            fh.close()
            raise
        found = record.rec_headers.get_header("WARC-Record-ID")
        if record_id and found != record_id:
            fh.close()
            raise ValueError(f"{warc_file} @ {offset} holds {found}, not {record_id}")
        return fh, record

    def read(self, capture: PageCapture) -> _Stored:
        if not capture.warc_file or capture.warc_offset is None:
            return _Stored(status="not_archived", detail="no WARC record of the answer (archiving was off or failed)")
        where = f"{capture.warc_file} @ {capture.warc_offset}"
        try:
            fh, record = self._open(capture.warc_file, capture.warc_offset, capture.warc_record_id)
        except FileNotFoundError:
            return _Stored(status="archive_error", detail=f"{capture.warc_file}: file missing")
        except Exception as exc:  # warcio raises several types for malformed records
            return _Stored(status="archive_error", detail=f"{where}: unreadable ({type(exc).__name__}: {str(exc)[:120]})")
        try:
            return self._answer(capture, record, where)
        except Exception as exc:
            return _Stored(status="archive_error", detail=f"{where}: unreadable ({type(exc).__name__}: {str(exc)[:120]})")
        finally:
            fh.close()

    def _answer(self, capture: PageCapture, record: Any, where: str) -> _Stored:
        url = capture.final_url or capture.requested_url
        too_large = _Stored(status="too_large", detail=f"{where}: the body is larger than DOWNLOAD_MAXSIZE "
                                                       f"({self.limit} B)")
        if record.rec_type == "resource":  # what a browser drew: the DOM
            body = _read_bounded(record.raw_stream, self.limit)
            if body is None:
                return too_large
            headers = [("Content-Type", capture.content_type)] if capture.content_type else []
            return _Stored(Answer(
                url=url, status=capture.http_status or 200, body=body, content_type=capture.content_type,
                is_html=is_html_type(capture.content_type, _is_text(headers, url, body)),
                rendered=True, render_reason=capture.render_reason))
        if record.rec_type not in ("response", "revisit") or record.http_headers is None:
            return _Stored(status="archive_error", detail=f"{where}: a {record.rec_type} record, not an answer")
        http = record.http_headers
        if record.rec_type == "revisit":
            refers_to = record.rec_headers.get_header("WARC-Refers-To")
            original = self.session.execute(
                select(WarcRecord).where(WarcRecord.record_id == refers_to)).scalar_one_or_none() if refers_to else None
            if original is None:
                return _Stored(status="archive_error", detail=f"{where}: revisit of {refers_to}, not in the index")
            fh, source = self._open(original.warc_file, original.offset, original.record_id)
            try:
                raw = _read_bounded(source.raw_stream, self.limit)
            finally:
                fh.close()
        else:
            raw = _read_bounded(record.raw_stream, self.limit)
        if raw is None:
            return too_large
        codings, last = _codings(http)
        truncated = None
        last_codings = [c.strip() for c in (last or "").split(",") if c.strip()]
        if len(last_codings) == 1:
            truncated = compressed_stream_problem(raw, last_codings[0], self.limit)
        body = _decode(raw, codings, self.limit)
        if body is None:
            return too_large
        content_type = _last_header(http, "Content-Type") or None
        return _Stored(Answer(
            url=url, status=int(http.get_statuscode() or 0), body=body, content_type=content_type,
            is_html=is_html_type(content_type, _is_text(http.headers, url, body)),
            location=_last_header(http, "Location"), body_truncated=truncated, rendered=False))


def catalogue_digest(path: str | Path | None) -> str:
    return hashlib.sha256(Path(path or CATALOGUE_PATH).read_bytes()).hexdigest()


def _load_catalogue(path: str | Path | None) -> Catalogue:
    if path is None:
        return load_catalogue()
    try:
        return load_catalogue(path)
    except OSError as exc:
        raise JudgeError(f"指标目录无法读取：{path}（{exc.strerror or exc}）") from None
    except CatalogueError as exc:
        raise JudgeError(f"指标目录无效：{' '.join(str(exc).split())}") from None


def _carry_pictures(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """A present finding at the same locator as the crawl's keeps the crawl's pictures of it."""
    if old is None:
        return new
    out = {**new, "screenshot": old.get("screenshot")}
    details = dict(new.get("details") or {})
    picture = (old.get("details") or {}).get("picture")
    if old.get("snippet") == new.get("snippet"):
        out["evidence_image"] = old.get("evidence_image")
        out["evidence_image_record_id"] = old.get("evidence_image_record_id")
        if picture is not None:
            details["picture"] = picture
    elif picture is not None:  # the element's text was checked against another snippet
        details["picture"] = {**picture, "text_match": None,
                              "reason": "the finding's snippet differs from the one the picture was checked against"}
    out["details"] = details
    return out


def judge_run(factory: sessionmaker, run_id: int, root: Path, *, catalogue_path: str | Path | None = None,
              actor: str = "judge") -> JudgeResult:
    """Judge every page capture of a run again from its archived bytes; see the module doc."""
    catalogue = _load_catalogue(catalogue_path)
    digest = catalogue_digest(catalogue_path)
    with factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            raise JudgeError(f"运行 {run_id} 不存在")
        if run.status == "running":
            raise JudgeError(f"运行 {run_id} 仍在抓取中：结束后才能重新判定")
        judgement = Judgement(run_id=run_id, detector_version=DETECTOR_VERSION, catalogue_sha256=digest,
                              status="running", started_at=utcnow(),
                              stats={"catalogue": Path(catalogue_path).name if catalogue_path else "catalogue.yaml"})
        session.add(judgement)
        session.flush()
        judgement_id = judgement.id
        audit.append(session, actor, "judgement.start", "judgements", judgement_id,
                     {"run": run_id, "judgement": judgement_id, "detector_version": DETECTOR_VERSION,
                      "catalogue_sha256": digest})
    try:
        with factory.begin() as session:
            result = _judge(session, run_id, judgement_id, Path(root), catalogue, actor)
            row = session.get(Judgement, judgement_id)
            row.status, row.finished_at = "finished", utcnow()
            row.stats = json_safe({**(row.stats or {}), "captures": result.captures, "from_archive": result.from_archive,
                                   "page_findings": result.page_findings, "statuses": result.statuses,
                                   "status_changed": result.changed[:100], **result.counts})
            audit.append(session, actor, "judgement.finish", "judgements", judgement_id,
                         {"run": run_id, "judgement": judgement_id, "page_findings": result.page_findings,
                          **result.counts})
        return result
    except Exception as exc:
        with factory.begin() as session:
            row = session.get(Judgement, judgement_id)
            row.status, row.finished_at = "failed", utcnow()
            row.stats = json_safe({**(row.stats or {}), "error": f"{type(exc).__name__}: {exc}"[:500]})
        raise


class CaptureJudge:
    """Judges stored captures of one run: reads each answer back from the archive and asks the
    pure judgement, with what the live crawl observed (``PageCapture.observations``: where a
    home page landed, whether its source is drawn page by page, the pictures taken on the live
    browser page). Used by ``judge_run`` over a whole run and, batch by batch while the crawl goes,
    by ``govevidence.judging`` (``judgement_id`` None: the crawl's own findings)."""

    def __init__(self, session: Session, run: CrawlRun, root: Path, catalogue: Catalogue, *,
                 judgement_id: int | None = None, captures: list[PageCapture] | None = None,
                 discover: bool = False) -> None:
        settings = run.settings or {}
        try:
            limit = int(settings.get("DOWNLOAD_MAXSIZE") or DEFAULT_MAXSIZE)
        except (TypeError, ValueError):
            limit = DEFAULT_MAXSIZE
        self.limit = limit if limit > 0 else DEFAULT_MAXSIZE
        self.run_id, self.root, self.catalogue, self.judgement_id = run.id, Path(root), catalogue, judgement_id
        self.auto_render = _truthy(settings.get("GOVEVIDENCE_AUTO_RENDER"), True)
        # Runs recorded with observations say what the crawl saw per capture; for earlier runs it
        # is read from the run as a whole (``captures``) and from the crawl's findings.
        self.observed = "GOVEVIDENCE_RENDER_CHALLENGES" in settings
        if self.observed:
            self.render_challenges = _truthy(settings.get("GOVEVIDENCE_RENDER_CHALLENGES"), self.auto_render)
            self.marked: set[int] = set()
        else:
            captures = captures or []
            self.render_challenges = any(c.rendered and c.render_reason == "challenge" for c in captures)
            self.marked = {c.source_id for c in captures if c.rendered and c.render_reason == "source_marked"}
        self.sources: dict[int, Source] = {}
        self.session = session
        # With ``discover``, the links to other evaluation sources on the portal pages judged,
        # for the crawl to record and fetch (``govevidence.judging``): the page is parsed here anyway.
        self.discover = discover
        self.found: list[dict[str, Any]] = []

    def _source(self, source_id: int) -> Source:
        if source_id not in self.sources:
            self.sources[source_id] = self.session.get(Source, source_id)
        return self.sources[source_id]

    def judge(self, capture: PageCapture, crawl_findings: list[Finding] | None = None
              ) -> tuple[str, str | None, list[dict[str, Any]], bool]:
        """(status, detail, finding rows, read from the archive) of one capture."""
        source = self._source(capture.source_id)
        catalogue = self.catalogue
        screenshot_only = capture.render_reason == "screenshot"
        from_archive = False
        observations = capture.observations or {}
        if capture.http_status is None and not capture.warc_file:
            # Failed at fetch time: no answer to look at, as during the crawl.
            status, detail = capture.error_status, capture.error_detail
            findings = (could_not_look(source.kind, source.url, status, detail or "", catalogue)
                        if capture.depth == 0 and not screenshot_only else [])
        else:
            stored = _Archive(self.session, self.root, self.limit).read(capture)
            if stored.answer is None:
                status, detail = stored.status or "archive_error", stored.detail
                findings = (could_not_look(source.kind, source.url, status, detail or "", catalogue)
                            if capture.depth == 0 and not screenshot_only else [])
            else:
                from_archive = True
                landed = None
                if capture.depth == 0:
                    landed = observations.get("landed") if self.observed else _landed(capture, source, crawl_findings or [])
                facts = PageFacts(source_kind=source.kind, source_url=source.url, depth=capture.depth,
                                  screenshot_only=screenshot_only, landed=landed)
                marked = bool(observations.get("source_marked")) if self.observed else capture.source_id in self.marked
                policy = RenderPolicy(source_marked=marked, auto_render=self.auto_render,
                                      render_challenges=self.render_challenges)
                try:
                    judged = judge(stored.answer, facts, policy, catalogue=catalogue, now=capture.fetched_at)
                    status, detail, findings = judged.status, judged.detail, judged.findings
                    if (self.discover and status == "ok" and judged.page is not None and not judged.render_next
                            and source.kind == "portal" and not screenshot_only):
                        self._discovered(source, judged.page)
                except Exception as exc:  # noqa: BLE001 — one page the detectors cannot read loses no other
                    logger.exception("Capture %s (%s) could not be judged", capture.id, capture.requested_url)
                    status, detail = "judge_error", f"{type(exc).__name__}: {str(exc)[:200]}"
                    findings = (could_not_look(source.kind, source.url, status, detail, catalogue)
                                if capture.depth == 0 and not screenshot_only else [])
        if self.observed:
            by_key = {(p.get("indicator"), p.get("locator")): _picture_as_old(p) for p in observations.get("pictures") or []}
        else:
            by_key = {(f.indicator, f.locator): _as_dict(f) for f in crawl_findings or [] if f.verdict == "present"}
        rows = []
        for found in findings:
            if found["verdict"] == "present":
                found = _carry_pictures(found, by_key.get((found["indicator"], found.get("locator"))))
            rows.append(finding_row(found, run_id=self.run_id, target_id=source.target_id, source_id=source.id,
                                    capture_id=capture.id, scope="page", judgement_id=self.judgement_id))
        return status, detail, rows, from_archive


    def _discovered(self, source: Source, page: Any) -> None:
        key = [source.target.code, source.kind, source.url]
        for found in discover_sources(page):
            self.found.append({"source": key, "page_url": page.url, "kind": found.kind, "url": found.url,
                               "anchor_text": found.anchor_text, "locator": found.locator})


def _judge(session: Session, run_id: int, judgement_id: int, root: Path, catalogue: Catalogue,
           actor: str) -> JudgeResult:
    run = session.get(CrawlRun, run_id)
    captures = session.execute(select(PageCapture).where(PageCapture.run_id == run_id)
                               .order_by(PageCapture.id)).scalars().all()
    crawl_findings: dict[int, list[Finding]] = {}
    for f in session.execute(select(Finding).where(
            Finding.run_id == run_id, Finding.scope == "page", Finding.judgement_id.is_(None)).order_by(Finding.id)).scalars():
        crawl_findings.setdefault(f.capture_id, []).append(f)
    judge_one = CaptureJudge(session, run, root, catalogue, judgement_id=judgement_id, captures=captures)

    result = JudgeResult(judgement_id, run_id)
    statuses: dict[int, str] = {}
    counter: Counter[str] = Counter()
    pending: dict[str, str] = {}
    done = 0
    for capture in captures:
        status, detail, rows, from_archive = judge_one.judge(capture, crawl_findings.get(capture.id, []))
        result.from_archive += from_archive
        statuses[capture.id] = status
        counter[status] += 1
        if status != capture.error_status:
            result.changed.append({"capture": capture.id, "url": capture.requested_url, "crawl": capture.error_status,
                                   "judged": status, "detail": detail})
        for finding_id, row_digest in insert_findings(session, rows):
            pending[str(finding_id)] = row_digest
        result.page_findings += len(rows)
        done += 1
        if done % BATCH == 0:
            _chain(session, actor, run_id, judgement_id, pending)
            pending = {}
    _chain(session, actor, run_id, judgement_id, pending)
    result.captures = len(captures)
    result.statuses = dict(counter)
    result.counts = rollup(session, run_id, judgement_id=judgement_id, actor=actor, statuses=statuses,
                           catalogue=catalogue)
    return result


def _chain(session: Session, actor: str, run_id: int, judgement_id: int, digests: dict[str, str]) -> None:
    if digests:
        audit.append_many(session, actor, [("judgement.findings", "judgements", judgement_id,
                                            {"run": run_id, "judgement": judgement_id, "findings": digests})])


def _picture_as_old(picture: dict[str, Any]) -> dict[str, Any]:
    """What the crawl pictured of a finding (``observations["pictures"]``), shaped as a finding."""
    return {"snippet": picture.get("snippet"), "screenshot": picture.get("screenshot"),
            "evidence_image": picture.get("evidence_image"),
            "evidence_image_record_id": picture.get("evidence_image_record_id"),
            "details": {"picture": picture["picture"]} if picture.get("picture") is not None else {}}


def _as_dict(finding: Finding) -> dict[str, Any]:
    return {"snippet": finding.snippet, "screenshot": finding.screenshot, "evidence_image": finding.evidence_image,
            "evidence_image_record_id": finding.evidence_image_record_id, "details": finding.details or {}}


def _landed(capture: PageCapture, source: Source, crawl_findings: list[Finding]) -> dict[str, Any] | None:
    """Where a home page landed, as the crawl recorded it (its site.reachable details)."""
    for f in crawl_findings:
        if f.indicator == "site.reachable" and f.verdict == "present":
            details = {k: v for k, v in (f.details or {}).items() if k != "picture"}
            return details or None
    final = capture.final_url or capture.requested_url
    if _origin(final) == _origin(source.url):
        return None
    return {"landing_url": final, "landing_origin": _origin(final),
            "crawl_scope": sorted({_origin(source.url), _origin(final)})}
