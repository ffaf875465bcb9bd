"""Closing a crawl run's row: its status from Scrapy's finish reason, its stats, the audit entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db import audit
from db.base import utcnow
from db.findings import json_safe
from db.models import CrawlRun


def run_status(reason: str) -> str:
    """``finished`` for a crawl that ran out of work, ``interrupted`` for Ctrl-C / SIGTERM
    (``shutdown``) and other stops, ``failed`` when the reason names an error."""
    return {"finished": "finished", "shutdown": "interrupted"}.get(reason, "failed" if "error" in reason else "interrupted")


def close_run(session: Session, run_id: int, reason: str, stats: dict[str, Any],
              audit_data: dict[str, Any] | None = None, actor: str = "crawler") -> CrawlRun:
    """Record the end of a run (time, reason, status, stats) and chain ``run.finish``."""
    run = session.get(CrawlRun, run_id)
    run.finished_at = utcnow()
    run.finish_reason = reason
    run.status = run_status(reason)
    run.stats = json_safe(stats)
    audit.append(session, actor, "run.finish", "crawl_runs", run.id, {"run": run.id, "reason": reason, **(audit_data or {})})
    return run
