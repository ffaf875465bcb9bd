"""warc records and screenshots

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 05:45:51.246800
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('warc_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('warc_file', sa.Text(), nullable=False),
    sa.Column('record_id', sa.String(length=80), nullable=False),
    sa.Column('record_type', sa.String(length=16), nullable=False),
    sa.Column('target_uri', sa.Text(), nullable=False),
    sa.Column('warc_date', sa.String(length=40), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('payload_sha256', sa.String(length=64), nullable=False),
    sa.Column('refers_to', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_warc_records_run_id_crawl_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warc_records')),
    sa.UniqueConstraint('record_id', name=op.f('uq_warc_records_record_id'))
    )
    with op.batch_alter_table('warc_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_warc_records_payload_sha256'), ['payload_sha256'], unique=False)

    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screenshot', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('evidence_image', sa.Text(), nullable=True))

    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screenshot', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.drop_column('screenshot')

    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_column('evidence_image')
        batch_op.drop_column('screenshot')

    with op.batch_alter_table('warc_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_warc_records_payload_sha256'))

    op.drop_table('warc_records')
