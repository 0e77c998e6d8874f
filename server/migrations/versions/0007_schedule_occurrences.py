"""schedule occurrences

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.core.models.base


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedule_occurrences',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workflow_key', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurrence_key', sa.String(length=200), nullable=False),
    sa.Column('since', server.core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('due_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_schedule_occurrences_event_id_events'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_schedule_occurrences_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_occurrences')),
    sa.UniqueConstraint('team_id', 'workflow_key', 'kind', 'entity_id', 'occurrence_key', name='uq_schedule_occurrences_once')
    )
    with op.batch_alter_table('schedule_occurrences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_occurrences_team_id'), ['team_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('schedule_occurrences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_occurrences_team_id'))

    op.drop_table('schedule_occurrences')
