"""Steps over a run's stored captures: roll the page findings up per source and per target.

The crawl records captures and page findings; the roll-ups are made from what is stored,
by the crawl at its end or again later (``govevidence judge RUN`` rolls up its own
findings), so the same code answers both.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db import audit
from db.base import utcnow
from db.models import Finding, PageCapture, Source
from govevidence.aggregate import SourceCrawl, aggregate_source, aggregate_target

FINDING_FIELDS = ("indicator", "verdict", "value", "url", "href", "locator", "snippet", "checked", "details",
                  "detector_version", "screenshot", "evidence_image")


def json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def finding_row(finding: dict[str, Any], **context: Any) -> dict[str, Any]:
    """A findings-table row with every column present (executemany needs equal keys)."""
    row = {k: finding.get(k) for k in FINDING_FIELDS}
    row["details"] = json_safe(finding.get("details") or {})
    row.update({"run_id": None, "target_id": None, "source_id": None, "capture_id": finding.get("capture_id"),
                "judgement_id": None, "scope": "page", "created_at": utcnow()})
    row.update(context)
    return row


def insert_findings(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Insert finding rows; returns (id, row digest) of each, for the audit log."""
    if not rows:
        return []
    ids = session.execute(
        insert(Finding).returning(Finding.id, sort_by_parameter_order=True), rows
    ).scalars().all()
    out = []
    for finding_id, row in zip(ids, rows):
        row["id"] = finding_id
        out.append((finding_id, audit.row_digest(Finding.__table__, row)))
    return out


def rollup(session: Session, run_id: int, *, judgement_id: int | None = None, actor: str = "crawler") -> dict[str, int]:
    """Source and target findings of a run from its page findings (those of one judgement, or
    the crawl's own when ``judgement_id`` is None); inserted, chained, counted."""
    from evidence import indicators_for  # evidence has no Scrapy/SQLAlchemy imports; loaded lazily

    captures = session.execute(
        select(PageCapture.id, PageCapture.source_id, PageCapture.requested_url, PageCapture.error_status,
               PageCapture.http_status, PageCapture.depth, PageCapture.referer)
        .where(PageCapture.run_id == run_id).order_by(PageCapture.depth, PageCapture.id)
    ).mappings().all()
    same_judgement = Finding.judgement_id.is_(None) if judgement_id is None else Finding.judgement_id == judgement_id
    findings = session.execute(
        select(Finding.indicator, Finding.verdict, Finding.value, Finding.url, Finding.href, Finding.locator,
               Finding.snippet, Finding.checked, Finding.capture_id, Finding.source_id, Finding.detector_version,
               Finding.screenshot, Finding.evidence_image)
        .where(Finding.run_id == run_id, Finding.scope == "page", same_judgement)
        .join(PageCapture, PageCapture.id == Finding.capture_id)
        .order_by(PageCapture.depth, Finding.id)
    ).mappings().all()
    sources = {s.id: s for s in session.execute(
        select(Source).where(Source.id.in_({c["source_id"] for c in captures}))).scalars()}
    crawls: dict[int, SourceCrawl] = {}
    for capture in captures:
        source = sources[capture["source_id"]]
        crawl = crawls.setdefault(source.id, SourceCrawl(source.id, source.target_id, source.kind, None))
        crawl.captures.append(capture)
        if capture["depth"] == 0 and crawl.home_status != "ok":
            crawl.home_status = capture["error_status"]
    for row in findings:
        crawls[row["source_id"]].findings.append(row)
    source_rows: list[dict[str, Any]] = []
    # Portal first: a target's identifiers and dates are read from its portal where it shows them.
    for crawl in sorted(crawls.values(), key=lambda c: (c.kind != "portal", c.source_id)):
        names = [i.id for i in indicators_for(crawl.kind)]
        source_rows.extend(aggregate_source(crawl, names))
    target_rows: list[dict[str, Any]] = []
    for target_id in {c.target_id for c in crawls.values()}:
        target_rows.extend(aggregate_target(target_id, [r for r in source_rows if r["target_id"] == target_id]))
    rows = [finding_row(r, run_id=run_id, target_id=r["target_id"], source_id=r["source_id"], scope=r["scope"],
                        judgement_id=judgement_id)
            for r in source_rows + target_rows]
    digests = insert_findings(session, rows)
    data: dict[str, Any] = {"run": run_id, "findings": {str(i): d for i, d in digests}}
    if judgement_id is not None:
        data["judgement"] = judgement_id
    audit.append(session, actor, "findings.rollup", "crawl_runs", run_id, data)
    return {"govevidence/source_findings": len(source_rows), "govevidence/target_findings": len(target_rows)}
