"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 05:39:41.185037
"""

from alembic import op
import sqlalchemy as sa
import db.base


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.BigInteger(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_table('crawl_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spider', sa.String(length=64), nullable=False),
    sa.Column('started_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('finish_reason', sa.String(length=64), nullable=True),
    sa.Column('software_version', sa.String(length=32), nullable=True),
    sa.Column('registry_file', sa.Text(), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.CheckConstraint("status IN ('running', 'finished', 'failed', 'interrupted')", name=op.f('ck_crawl_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crawl_runs'))
    )
    op.create_table('targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_code', sa.String(length=6), nullable=True),
    sa.CheckConstraint("level IN ('province', 'city')", name=op.f('ck_targets_level')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_targets')),
    sa.UniqueConstraint('code', name=op.f('uq_targets_code'))
    )
    op.create_table('sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('anchor_text', sa.Text(), nullable=True),
    sa.Column('discovered_on', sa.Text(), nullable=True),
    sa.Column('first_seen_run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('portal', 'service', 'opendata', 'interaction', 'department', 'newmedia')", name=op.f('ck_sources_kind')),
    sa.CheckConstraint("origin IN ('registry', 'discovered')", name=op.f('ck_sources_origin')),
    sa.ForeignKeyConstraint(['first_seen_run_id'], ['crawl_runs.id'], name=op.f('fk_sources_first_seen_run_id_crawl_runs')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_sources_target_id_targets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('target_id', 'kind', 'url', name='uq_sources_target_kind_url')
    )
    op.create_table('page_captures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('requested_url', sa.Text(), nullable=False),
    sa.Column('final_url', sa.Text(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('fetched_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content_type', sa.String(length=200), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('encoding', sa.String(length=32), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('rendered', sa.Boolean(), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('referer', sa.Text(), nullable=True),
    sa.Column('error_status', sa.String(length=32), nullable=False),
    sa.Column('error_detail', sa.Text(), nullable=True),
    sa.Column('warc_file', sa.Text(), nullable=True),
    sa.Column('warc_record_id', sa.String(length=80), nullable=True),
    sa.Column('warc_offset', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_page_captures_run_id_crawl_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_page_captures_source_id_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page_captures')),
    sa.UniqueConstraint('run_id', 'source_id', 'requested_url', 'rendered', name='uq_page_captures_run_source_url')
    )
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.create_index('ix_page_captures_run_source', ['run_id', 'source_id'], unique=False)

    op.create_table('findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('capture_id', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('indicator', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=8), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('href', sa.Text(), nullable=True),
    sa.Column('locator', sa.Text(), nullable=True),
    sa.Column('snippet', sa.Text(), nullable=True),
    sa.Column('checked', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('detector_version', sa.String(length=80), nullable=True),
    sa.Column('created_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("scope IN ('page', 'source', 'target')", name=op.f('ck_findings_scope')),
    sa.CheckConstraint("verdict IN ('present', 'absent', 'unknown')", name=op.f('ck_findings_verdict')),
    sa.ForeignKeyConstraint(['capture_id'], ['page_captures.id'], name=op.f('fk_findings_capture_id_page_captures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_findings_run_id_crawl_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_findings_source_id_sources'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_findings_target_id_targets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings'))
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_capture', ['capture_id'], unique=False)
        batch_op.create_index('ix_findings_run_indicator', ['run_id', 'indicator'], unique=False)

    op.create_table('review_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('reviewer', sa.String(length=100), nullable=False),
    sa.Column('decided_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.CheckConstraint("decision IN ('confirmed', 'rejected', 'needs_review')", name=op.f('ck_review_decisions_decision')),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_review_decisions_finding_id_findings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_decisions'))
    )


def downgrade() -> None:
    op.drop_table('review_decisions')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index('ix_findings_run_indicator')
        batch_op.drop_index('ix_findings_capture')

    op.drop_table('findings')
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.drop_index('ix_page_captures_run_source')

    op.drop_table('page_captures')
    op.drop_table('sources')
    op.drop_table('targets')
    op.drop_table('crawl_runs')
    op.drop_table('audit_log')
