"""events owed to the dealflow_event hook: notify_at, and a partial index over the owed ones

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.core.models.base


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing events get NULL: they count as notified (their hooks ran, or were lost,
    # before delivery was durable); nothing is redelivered on upgrade.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_at', server.core.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_events_notify_at'),
            ['notify_at'],
            unique=False,
            postgresql_where=sa.text('notify_at IS NOT NULL'),
            sqlite_where=sa.text('notify_at IS NOT NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_notify_at'))
        batch_op.drop_column('notify_at')
