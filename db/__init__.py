"""SQLAlchemy 2 models, session factory and Alembic migrations of the evidence database."""

from db.models import (
    AuditEntry,
    CrawlRun,
    Finding,
    PageCapture,
    ReviewDecision,
    Source,
    Target,
)
from db.session import database_url, ensure_schema, get_engine, session_factory, upgrade

__all__ = [
    "AuditEntry",
    "CrawlRun",
    "Finding",
    "PageCapture",
    "ReviewDecision",
    "Source",
    "Target",
    "database_url",
    "ensure_schema",
    "get_engine",
    "session_factory",
    "upgrade",
]
