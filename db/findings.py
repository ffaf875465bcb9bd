"""Finding rows as stored: shaping and batched, digested inserts.

Used by the crawl (page findings, ``crawler.pipelines``) and by the steps over stored
captures (roll-ups, ``govevidence.seal``), so both write the same rows.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from db import audit
from db.base import utcnow
from db.models import Finding

FINDING_FIELDS = ("indicator", "verdict", "value", "url", "href", "locator", "snippet", "checked", "details",
                  "detector_version", "screenshot", "evidence_image", "evidence_image_record_id", "derived_from_id")


def of_judgement(judgement_id: int | None) -> Any:
    """WHERE clause: findings of one judgement, or the crawl's own when ``judgement_id`` is None."""
    return Finding.judgement_id.is_(None) if judgement_id is None else Finding.judgement_id == judgement_id


def json_safe(value: Any) -> Any:
    """The value as it reads back from a JSON column (dates and other objects as strings)."""
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
