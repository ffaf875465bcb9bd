"""Migrations and models against a real database (SQLite, and PostgreSQL when enabled)."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import audit
from db.base import Base
from db.models import AuditEntry, CrawlRun, Finding, ReviewDecision, Source, Target
from db.session import current_revision, ensure_schema, head_revision, upgrade


def test_upgrade_head_on_empty_database(engine):
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"targets", "sources", "crawl_runs", "page_captures", "findings", "review_decisions", "audit_log"} <= tables


def test_autogenerate_finds_no_drift(engine):
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_ensure_schema_is_idempotent(engine):
    ensure_schema(engine)
    ensure_schema(engine)
    assert current_revision(engine) == head_revision(engine)


def test_timestamps_come_back_as_utc(engine):
    ensure_schema(engine)
    beijing = dt.timezone(dt.timedelta(hours=8))
    with Session(engine) as session:
        run = CrawlRun(spider="x", started_at=dt.datetime(2026, 11, 26, 8, 0, tzinfo=beijing))
        session.add(run)
        session.commit()
        run_id = run.id
    with Session(engine) as session:
        started = session.get(CrawlRun, run_id).started_at
    assert started == dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.timezone.utc)
    assert started.utcoffset() == dt.timedelta(0)


def test_naive_timestamps_are_refused(engine):
    ensure_schema(engine)
    with Session(engine) as session:
        session.add(CrawlRun(spider="x", started_at=dt.datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()


def test_constraints_hold(engine):
    ensure_schema(engine)
    with Session(engine) as session:
        target = Target(code="330000", name="浙江省", level="province")
        session.add(target)
        session.flush()
        session.add(Source(target_id=target.id, kind="portal", url="https://www.zj.gov.cn/"))
        session.commit()
        session.add(Source(target_id=target.id, kind="portal", url="https://www.zj.gov.cn/"))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        run = CrawlRun(spider="x")
        session.add(run)
        session.flush()
        session.add(Finding(run_id=run.id, target_id=target.id, indicator="site.search", verdict="maybe"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_review_decisions_append(engine):
    ensure_schema(engine)
    with Session(engine) as session:
        target = Target(code="330100", name="杭州市", level="city", parent_code="330000")
        run = CrawlRun(spider="x")
        session.add_all([target, run])
        session.flush()
        finding = Finding(run_id=run.id, target_id=target.id, indicator="site.search", verdict="present")
        session.add(finding)
        session.flush()
        session.add(ReviewDecision(finding_id=finding.id, reviewer="张三", decision="confirmed"))
        session.add(ReviewDecision(finding_id=finding.id, reviewer="李四", decision="rejected", comment="链接失效"))
        session.commit()
        decisions = session.execute(
            select(ReviewDecision.decision).where(ReviewDecision.finding_id == finding.id).order_by(ReviewDecision.id)
        ).scalars().all()
    assert decisions == ["confirmed", "rejected"]


def test_audit_chain_detects_edits(engine):
    ensure_schema(engine)
    with Session(engine) as session, session.begin():
        for n in range(3):
            audit.append(session, "tester", "finding.add", "findings", n, {"n": n, "文字": "好差评"})
    with Session(engine) as session:
        assert audit.verify_chain(session) == []
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        assert entries[0].prev_hash is None
        assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    with Session(engine) as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.id == entries[1].id).values(data={"n": 99}))
    with Session(engine) as session:
        assert audit.verify_chain(session) == [f"audit_log {entries[1].id}: content does not match its hash"]


def test_row_digest_of_rows_written_before_later_columns_existed():
    """A capture chained before provenance columns were added still has the digest it had."""
    import hashlib

    from db.audit import canonical_json, row_digest
    from db.models import PageCapture

    table = PageCapture.__table__
    later = [c.name for c in table.columns if c.info.get("digest_optional")]
    assert {"ip_address", "tls_version", "cert_chain_sha256", "render_reason"} <= set(later)
    old_row = {c.name: None for c in table.columns}
    old_row.update(id=7, run_id=1, source_id=2, requested_url="http://a.gov.cn/", error_status="ok", depth=0)
    # What the digest was when the table had only its first columns.
    before = hashlib.sha256(canonical_json(
        [old_row[c.name] for c in table.columns if c.name not in later]).encode("utf-8")).hexdigest()
    assert row_digest(table, old_row) == before
    # A value in a later column is covered by the digest.
    assert row_digest(table, {**old_row, "ip_address": "203.0.113.9"}) != before
