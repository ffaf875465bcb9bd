"""record pointers: the WARC record of each picture, and the page finding behind each roll-up

- page_captures.screenshot_record_id: the full-page screenshot's ``resource`` record;
- findings.evidence_image_record_id: the element picture's ``resource`` record;
- findings.derived_from_id: for a source or target roll-up row, the page finding it stands on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screenshot_record_id', sa.String(length=80), nullable=True))
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_image_record_id', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('derived_from_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_findings_derived_from_id_findings'), 'findings',
                                    ['derived_from_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index(batch_op.f('ix_findings_derived_from_id'), ['derived_from_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_findings_derived_from_id'))
        batch_op.drop_constraint(batch_op.f('fk_findings_derived_from_id_findings'), type_='foreignkey')
        batch_op.drop_column('derived_from_id')
        batch_op.drop_column('evidence_image_record_id')
    with op.batch_alter_table('page_captures', schema=None) as batch_op:
        batch_op.drop_column('screenshot_record_id')
