"""What a fetch is recorded as: the ``PageRecord`` of a request, filled in from its answer,
and the ``Answer`` the judgement reads."""

from __future__ import annotations

import hashlib

import scrapy
from scrapy.http import Response, TextResponse

from crawler.items import PageRecord
from db.base import utcnow
from crawler.tls import connection_facts
from evidence.judgement import Answer, is_html_type
from spiders.sources import SourceConfig


def new_record(request: scrapy.Request, state: SourceConfig, depth: int) -> PageRecord:
    """The capture of a request, named by the URL first asked for (before redirects)."""
    redirects = request.meta.get("redirect_urls") or []
    referer = request.headers.get(b"Referer")
    return PageRecord(
        target_code=state.target_code, source_kind=state.kind, source_url=state.url,
        requested_url=redirects[0] if redirects else request.url, fetched_at=utcnow(), depth=depth,
        referer=referer.decode("latin-1") if referer else None,
    )


def answered_record(response: Response, record: PageRecord) -> PageRecord:
    """``record`` with what the answer tells: status, type, size, archive pointers, digest,
    rendering, the address and TLS facts of the connection."""
    record.final_url = response.url
    record.http_status = response.status
    record.content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
    record.size = len(response.body)
    warc = response.meta.get("warc") or {}
    record.warc_file, record.warc_record_id, record.warc_offset = (
        warc.get("warc_file"), warc.get("record_id"), warc.get("offset"))
    record.warc_request_id = warc.get("request_record_id")
    # SHA-256 of the body as archived (as received, or the rendered DOM).
    record.sha256 = warc.get("payload_sha256") or hashlib.sha256(response.body).hexdigest()
    record.rendered = "playwright" in response.flags or bool(response.meta.get("playwright"))
    record.render_reason = (response.meta.get("render_reason") or "source_marked") if record.rendered else None
    # A browser's answer names the connection it was given (a local proxy), not the server.
    if response.ip_address is not None and not record.rendered:
        record.ip_address = str(response.ip_address)
    for name, value in connection_facts(response).items():
        setattr(record, name, value)
    return record


def answer_of(response: Response, record: PageRecord) -> Answer:
    """The answer as the judgement reads it."""
    location = response.headers.get(b"Location")
    return Answer(
        url=response.url, status=response.status, body=response.body, content_type=record.content_type,
        is_html=is_html_type(record.content_type, isinstance(response, TextResponse)),
        location=location.decode("latin-1") if location is not None else None,
        body_truncated=response.meta.get("body_truncated"), rendered=record.rendered,
        render_reason=record.render_reason)
