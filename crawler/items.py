"""Items the spiders yield; the pipeline turns them into database rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass
class PageRecord:
    """One fetch attempt of one URL for one source, as the crawl saw it (its findings are made
    from the stored capture by the judging step)."""

    target_code: str
    source_kind: str
    source_url: str
    requested_url: str
    fetched_at: dt.datetime
    final_url: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    encoding: str | None = None
    title: str | None = None
    rendered: bool = False
    depth: int = 0
    referer: str | None = None
    error_status: str = "ok"
    error_detail: str | None = None
    warc_file: str | None = None
    warc_record_id: str | None = None
    warc_offset: int | None = None
    screenshot: str | None = None
    # The WARC-Record-ID of the full-page screenshot's ``resource`` record.
    screenshot_record_id: str | None = None
    # The address the answer came from (Scrapy's ``response.ip_address``).
    ip_address: str | None = None
    # Why a browser drew this capture: source_marked, script_shell, challenge, screenshot (None: not rendered).
    render_reason: str | None = None
    # The WARC ``request`` record paired with the response record, when the archive says which.
    warc_request_id: str | None = None
    # Over HTTPS: what the server presented (crawler.tls.connection_facts).
    tls_version: str | None = None
    cert_chain_sha256: str | None = None
    cert_valid: bool | None = None
    cert_error: str | None = None
    # How the full-page picture was drawn and checked (segments, sizes, flags).
    screenshot_check: dict[str, Any] | None = None
    # What only the live crawl saw (PageCapture.observations).
    observations: dict[str, Any] | None = None


@dataclass
class SourceRecord:
    """An evaluation source of a target found by following a portal's links."""

    target_code: str
    kind: str
    url: str
    anchor_text: str | None
    discovered_on: str
