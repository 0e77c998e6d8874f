"""hook secrets, webhook deliveries, execution dispatch

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.core.models.base
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hook_secrets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('expires_at', server.core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_hook_secrets_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hook_secrets')),
    sa.UniqueConstraint('key_id', name=op.f('uq_hook_secrets_key_id'))
    )
    with op.batch_alter_table('hook_secrets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hook_secrets_team_id'), ['team_id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('webhook_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status_code', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_webhook_deliveries_event_id_events'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_webhook_deliveries_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('team_id', 'webhook_id', name=op.f('uq_webhook_deliveries_team_id_webhook_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_team_id'), ['team_id'], unique=False)

    with op.batch_alter_table('action_executions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', server.core.models.base.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('name')

    with op.batch_alter_table('action_executions', schema=None) as batch_op:
        batch_op.drop_column('dispatched_at')

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_team_id'))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('hook_secrets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hook_secrets_team_id'))

    op.drop_table('hook_secrets')
