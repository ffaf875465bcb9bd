"""The append-only audit log: each entry carries the hash of the one before it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.base import utcnow
from db.models import AuditEntry


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def entry_hash(prev_hash: str | None, at: str, actor: str, action: str, entity: str,
               entity_id: int | None, data: dict[str, Any]) -> str:
    payload = canonical_json([prev_hash, at, actor, action, entity, entity_id, data])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(session: Session, actor: str, action: str, entity: str,
           entity_id: int | None = None, data: dict[str, Any] | None = None) -> AuditEntry:
    """Add an entry chained to the newest one, inside the caller's transaction."""
    append_many(session, actor, [(action, entity, entity_id, data or {})])
    return session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()


def verify_chain(session: Session) -> list[str]:
    """Problems found in the chain, by entry id; empty when intact."""
    problems: list[str] = []
    prev: str | None = None
    for entry in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        if entry.prev_hash != prev:
            problems.append(f"audit_log {entry.id}: prev_hash does not match entry before it")
        expected = entry_hash(entry.prev_hash, entry.at.isoformat(), entry.actor, entry.action,
                              entry.entity, entry.entity_id, entry.data)
        if expected != entry.hash:
            problems.append(f"audit_log {entry.id}: content does not match its hash")
        prev = entry.hash
    return problems


def row_digest(table: Any, row: Any) -> str:
    """SHA-256 over every column of a row, in table order (a mapping or an ORM object).

    Columns added after rows were first chained (``info={"digest_optional": True}``) count only
    when they hold a value, so a row written before they existed keeps its digest."""
    get = row.get if isinstance(row, dict) else (lambda name: getattr(row, name))
    values = []
    for column in table.columns:
        value = get(column.name)
        if value is None and column.info.get("digest_optional"):
            continue
        values.append(value.isoformat() if hasattr(value, "isoformat") else value)
    return hashlib.sha256(canonical_json(values).encode("utf-8")).hexdigest()


def append_many(session: Session, actor: str, entries: list[tuple[str, str, int | None, dict[str, Any]]]) -> None:
    """Chain several (action, entity, entity_id, data) entries in one go."""
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appenders so two writers never chain to the same predecessor.
        session.execute(text("SELECT pg_advisory_xact_lock(727001)"))
    elif session.get_bind().dialect.name == "sqlite":
        # Take the write lock before reading the head: a statement that writes starts the
        # transaction and holds it, so no other process chains to the same head meanwhile.
        session.execute(text("UPDATE audit_log SET id = id WHERE 0"))
    prev = session.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    rows = []
    for action, entity, entity_id, data in entries:
        at = utcnow()
        digest = entry_hash(prev, at.isoformat(), actor, action, entity, entity_id, data)
        rows.append(AuditEntry(at=at, actor=actor, action=action, entity=entity, entity_id=entity_id,
                               data=data, prev_hash=prev, hash=digest))
        prev = digest
    session.add_all(rows)
    session.flush()
