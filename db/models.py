"""The evidence database.

Rows about what a site showed are never edited in place once a run has finished:
a reviewer's decision is a new `review_decisions` row and every write of evidence
is chained in `audit_log`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, utcnow

from vocabulary import DECISIONS, JUDGEMENT_STATUSES, LEVELS, RUN_STATUSES, SOURCE_KINDS, VERDICTS


# Columns added after rows were first chained in the audit log: a row digest leaves them out
# while they are empty, so rows written before they existed still verify (db.audit.row_digest).
LATER = {"digest_optional": True}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Target(Base):
    """An evaluated government (province-level or key city)."""

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[Optional[str]] = mapped_column(String(6))

    sources: Mapped[list["Source"]] = relationship(back_populates="target")

    __table_args__ = (CheckConstraint(_in("level", LEVELS), name="level"),)


class Source(Base):
    """One public channel of a target: from the registry or discovered on its portal."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[Optional[str]] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(16), default="registry")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    anchor_text: Mapped[Optional[str]] = mapped_column(Text)
    discovered_on: Mapped[Optional[str]] = mapped_column(Text)
    first_seen_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("crawl_runs.id"))

    target: Mapped[Target] = relationship(back_populates="sources")

    __table_args__ = (
        UniqueConstraint("target_id", "kind", "url", name="uq_sources_target_kind_url"),
        CheckConstraint(_in("kind", SOURCE_KINDS), name="kind"),
        CheckConstraint(_in("origin", ("registry", "discovered")), name="origin"),
    )


class CrawlRun(Base):
    """One `scrapy crawl` (or other collection job) from start to finish."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    spider: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]]
    status: Mapped[str] = mapped_column(String(16), default="running")
    finish_reason: Mapped[Optional[str]] = mapped_column(String(64))
    software_version: Mapped[Optional[str]] = mapped_column(String(32))
    registry_file: Mapped[Optional[str]] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # How many crawl workers share the run; the last of them to close it rolls it up and seals it.
    workers: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)


class RunWorker(Base):
    """One crawl process taking part in a run (one per run, unless several share it)."""

    __tablename__ = "run_workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]]
    finish_reason: Mapped[Optional[str]] = mapped_column(String(64))
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PageCapture(Base):
    """One attempt to fetch one URL in one run, successful or not."""

    __tablename__ = "page_captures"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    requested_url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[Optional[str]] = mapped_column(Text)
    http_status: Mapped[Optional[int]] = mapped_column(Integer)
    fetched_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    content_type: Mapped[Optional[str]] = mapped_column(String(200))
    size: Mapped[Optional[int]] = mapped_column(BigInteger)
    sha256: Mapped[Optional[str]] = mapped_column(String(64))
    encoding: Mapped[Optional[str]] = mapped_column(String(32))
    title: Mapped[Optional[str]] = mapped_column(Text)
    rendered: Mapped[bool] = mapped_column(Boolean, default=False)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    referer: Mapped[Optional[str]] = mapped_column(Text)
    error_status: Mapped[str] = mapped_column(String(32), default="ok")
    error_detail: Mapped[Optional[str]] = mapped_column(Text)
    warc_file: Mapped[Optional[str]] = mapped_column(Text)
    warc_record_id: Mapped[Optional[str]] = mapped_column(String(80))
    warc_offset: Mapped[Optional[int]] = mapped_column(BigInteger)
    screenshot: Mapped[Optional[str]] = mapped_column(Text)
    # Provenance: the address the answer came from and, over HTTPS, what the server presented.
    ip_address: Mapped[Optional[str]] = mapped_column(String(64), info=LATER)
    tls_version: Mapped[Optional[str]] = mapped_column(String(16), info=LATER)
    cert_chain_sha256: Mapped[Optional[str]] = mapped_column(String(64), info=LATER)
    cert_valid: Mapped[Optional[bool]] = mapped_column(Boolean, info=LATER)
    cert_error: Mapped[Optional[str]] = mapped_column(Text, info=LATER)
    # Why a browser drew this capture (None: fetched without one).
    render_reason: Mapped[Optional[str]] = mapped_column(String(32), info=LATER)
    warc_request_id: Mapped[Optional[str]] = mapped_column(String(80), info=LATER)
    # How the full-page picture was drawn and checked (segments, sizes, truncated / mismatch flags).
    screenshot_check: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, info=LATER)
    # What only the live crawl saw, for judging the capture later: where a home page landed
    # (``landed``), whether its source is drawn page by page (``source_marked``), the pictures
    # taken of elements on the live browser page (``pictures``: indicator, locator, snippet, files).
    observations: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, info=LATER)
    # The WARC-Record-ID of the full-page screenshot's ``resource`` record (``screenshot``'s bytes).
    screenshot_record_id: Mapped[Optional[str]] = mapped_column(String(80), info=LATER)

    __table_args__ = (
        UniqueConstraint("run_id", "source_id", "requested_url", "rendered", name="uq_page_captures_run_source_url"),
        Index("ix_page_captures_run_source", "run_id", "source_id"),
    )


class Judgement(Base):
    """The detectors run again over a run's stored captures (``govevidence judge RUN``).

    Findings made during the crawl have no judgement; each judgement's findings (page
    findings and their roll-ups) carry its id. Nothing of an earlier judgement is changed.
    """

    __tablename__ = "judgements"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"), index=True)
    detector_version: Mapped[str] = mapped_column(String(80))
    catalogue_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]]
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (CheckConstraint(_in("status", JUDGEMENT_STATUSES), name="status"),)


class Finding(Base):
    """What one detector concluded about one indicator, on a page or over a source or target."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    capture_id: Mapped[Optional[int]] = mapped_column(ForeignKey("page_captures.id", ondelete="CASCADE"))
    # None: made during the crawl; else the judgement that made it.
    judgement_id: Mapped[Optional[int]] = mapped_column(ForeignKey("judgements.id", ondelete="CASCADE"), info=LATER)
    scope: Mapped[str] = mapped_column(String(8), default="page")
    indicator: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(8))
    value: Mapped[Optional[str]] = mapped_column(Text)
    url: Mapped[Optional[str]] = mapped_column(Text)
    href: Mapped[Optional[str]] = mapped_column(Text)
    locator: Mapped[Optional[str]] = mapped_column(Text)
    snippet: Mapped[Optional[str]] = mapped_column(Text)
    checked: Mapped[Optional[str]] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    detector_version: Mapped[Optional[str]] = mapped_column(String(80))
    screenshot: Mapped[Optional[str]] = mapped_column(Text)
    evidence_image: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The WARC-Record-ID of the element picture's ``resource`` record (``evidence_image``'s bytes).
    evidence_image_record_id: Mapped[Optional[str]] = mapped_column(String(80), info=LATER)
    # A source or target roll-up: the page finding it stands on (the best present one; for an
    # absent, the page searched; None for an unknown with no page finding).
    derived_from_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE"), index=True, info=LATER)

    __table_args__ = (
        CheckConstraint(_in("verdict", VERDICTS), name="verdict"),
        CheckConstraint(_in("scope", ("page", "source", "target")), name="scope"),
        Index("ix_findings_run_indicator", "run_id", "indicator"),
        Index("ix_findings_capture", "capture_id"),
    )


class WarcRecord(Base):
    """One record written to a WARC file; the index for revisits, exports and verify."""

    __tablename__ = "warc_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    warc_file: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str] = mapped_column(String(80), unique=True)
    record_type: Mapped[str] = mapped_column(String(16))
    target_uri: Mapped[str] = mapped_column(Text)
    warc_date: Mapped[str] = mapped_column(String(40))
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    payload_sha256: Mapped[str] = mapped_column(String(64), index=True)
    refers_to: Mapped[Optional[str]] = mapped_column(String(80))


class ReviewDecision(Base):
    """A reviewer's decision on a finding; append-only, the newest one counts."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[Optional[str]] = mapped_column(Text)
    # A correction's new verdict and value (None: unchanged).
    verdict: Mapped[Optional[str]] = mapped_column(String(8), info=LATER)
    value: Mapped[Optional[str]] = mapped_column(Text, info=LATER)

    __table_args__ = (CheckConstraint(_in("decision", DECISIONS), name="decision"),)


class RunAnchor(Base):
    """An outside witness of a sealed run: an RFC 3161 time-stamp token over the run's manifest
    digest and the audit chain head at sealing. Whoever rewrites the chain afterwards cannot
    make the token's imprint match again."""

    __tablename__ = "run_anchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # "rfc3161"
    audit_entry_id: Mapped[int] = mapped_column(BigInteger)
    audit_hash: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    tsa_url: Mapped[Optional[str]] = mapped_column(Text)
    token: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    token_file: Mapped[Optional[str]] = mapped_column(Text)
    gen_time: Mapped[Optional[dt.datetime]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only log; each entry carries the hash of the one before it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[Optional[str]] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
