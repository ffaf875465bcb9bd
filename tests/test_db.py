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
from db.session import current_revision, downgrade, ensure_schema, head_revision, upgrade


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


# The columns revision 0006 adds.
NEW_IN_0006 = {"page_captures": {"screenshot_record_id"}, "findings": {"evidence_image_record_id", "derived_from_id"}}


def test_upgrade_from_0005_keeps_rows_their_digests_and_review_decisions(engine):
    """0006 adds the record pointers to a database holding evidence: every row keeps its digest
    (the new columns are empty), review decisions survive the rebuilt findings table, and the
    downgrade goes back to 0005 keeping the rows."""
    from sqlalchemy import delete, insert

    from db.models import PageCapture

    upgrade(engine, "0005")
    captures, findings = PageCapture.__table__, Finding.__table__
    now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        target = conn.execute(insert(Target.__table__).values(code="330000", name="浙江省", level="province")
                              .returning(Target.id)).scalar_one()
        source = conn.execute(insert(Source.__table__).values(target_id=target, kind="portal", url="https://www.zj.gov.cn/",
                                                              origin="registry", verified=True).returning(Source.id)).scalar_one()
        run = conn.execute(insert(CrawlRun.__table__).values(spider="x", started_at=now, status="finished", settings={},
                                                             stats={}).returning(CrawlRun.id)).scalar_one()
        capture = conn.execute(insert(captures).values(
            run_id=run, source_id=source, requested_url="https://www.zj.gov.cn/", fetched_at=now, rendered=True,
            depth=0, error_status="ok", screenshot="screenshots/run-00001/ab.png", observations={"pictures": []})
            .returning(captures.c.id)).scalar_one()
        page = conn.execute(insert(findings).values(
            run_id=run, target_id=target, source_id=source, capture_id=capture, scope="page", indicator="site.icp_record",
            verdict="present", value="浙ICP备1号", details={}, created_at=now, evidence_image="screenshots/run-00001/cd.png")
            .returning(findings.c.id)).scalar_one()
        rolled = conn.execute(insert(findings).values(
            run_id=run, target_id=target, source_id=source, capture_id=capture, scope="source",
            indicator="site.icp_record", verdict="present", value="浙ICP备1号", details={}, created_at=now)
            .returning(findings.c.id)).scalar_one()
        conn.execute(insert(ReviewDecision.__table__).values(finding_id=rolled, reviewer="张三", decided_at=now,
                                                             decision="confirmed"))
        old = {table.name: {row["id"]: audit.row_digest(table, {**row, **{c: None for c in NEW_IN_0006[table.name]}})
                            for row in conn.execute(select(*[c for c in table.c if c.name not in NEW_IN_0006[table.name]]))
                            .mappings()} for table in (captures, findings)}

    upgrade(engine)
    assert current_revision(engine) == head_revision(engine) == "0006"
    columns = {table: {c["name"] for c in inspect(engine).get_columns(table)} for table in ("page_captures", "findings")}
    assert {"screenshot_record_id"} <= columns["page_captures"]
    assert {"evidence_image_record_id", "derived_from_id"} <= columns["findings"]
    assert "ix_findings_derived_from_id" in {i["name"] for i in inspect(engine).get_indexes("findings")}
    with Session(engine) as session:
        for model in (PageCapture, Finding):
            rows = session.execute(select(model)).scalars().all()
            assert {r.id: audit.row_digest(model.__table__, r) for r in rows} == old[model.__tablename__]
        assert session.execute(select(ReviewDecision.finding_id)).scalars().all() == [rolled]

    downgrade(engine, "0005")
    assert current_revision(engine) == "0005"
    assert not {"evidence_image_record_id", "derived_from_id"} & {c["name"] for c in inspect(engine).get_columns("findings")}
    assert "screenshot_record_id" not in {c["name"] for c in inspect(engine).get_columns("page_captures")}
    upgrade(engine)
    with Session(engine) as session, session.begin():
        assert session.execute(select(ReviewDecision.finding_id)).scalars().all() == [rolled]
        session.execute(update(Finding).where(Finding.id == rolled).values(derived_from_id=page))
    with Session(engine) as session, session.begin():  # a roll-up goes with the page finding it stands on
        session.execute(delete(Finding).where(Finding.id == page))
    with Session(engine) as session:
        assert session.execute(select(Finding.id)).scalars().all() == []
        assert session.execute(select(ReviewDecision.id)).scalars().all() == []
