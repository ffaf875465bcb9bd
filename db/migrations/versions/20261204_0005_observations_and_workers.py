"""page_captures.observations (what only the live crawl saw); crawl runs shared by workers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:30:00
"""

from alembic import op
import sqlalchemy as sa

import db.base


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('observations', sa.JSON(), nullable=True))
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workers', sa.Integer(), server_default='1', nullable=False))
    op.create_table('run_workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finish_reason', sa.String(length=64), nullable=True),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_run_workers_run_id_crawl_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_workers'))
    )
    with op.batch_alter_table('run_workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_workers_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run_workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_workers_run_id'))
    op.drop_table('run_workers')
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.drop_column('workers')
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.drop_column('observations')
