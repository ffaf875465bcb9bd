"""capture provenance (address, TLS), render reasons, run anchors

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:20:00
"""

from alembic import op
import sqlalchemy as sa

import db.base


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ip_address', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tls_version', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('cert_chain_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('cert_valid', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('cert_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('render_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('warc_request_id', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('screenshot_check', sa.JSON(), nullable=True))

    op.create_table('run_anchors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('audit_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('audit_hash', sa.String(length=64), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('tsa_url', sa.Text(), nullable=True),
    sa.Column('token', sa.LargeBinary(), nullable=True),
    sa.Column('token_file', sa.Text(), nullable=True),
    sa.Column('gen_time', db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_run_anchors_run_id_crawl_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_anchors'))
    )
    with op.batch_alter_table('run_anchors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_anchors_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verdict', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('value', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_column('value')
        batch_op.drop_column('verdict')

    with op.batch_alter_table('run_anchors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_anchors_run_id'))
    op.drop_table('run_anchors')

    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        for name in ('screenshot_check', 'warc_request_id', 'render_reason', 'cert_error', 'cert_valid', 'cert_chain_sha256',
                     'tls_version', 'ip_address'):
            batch_op.drop_column(name)
