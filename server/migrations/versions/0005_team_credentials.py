"""team credentials

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.core.models.base


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('team_credentials',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plugin', sa.String(length=64), nullable=False),
    sa.Column('values_encrypted', sa.Text(), nullable=False),
    sa.Column('created_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_team_credentials_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_credentials')),
    sa.UniqueConstraint('team_id', 'plugin', name=op.f('uq_team_credentials_team_id_plugin'))
    )
    with op.batch_alter_table('team_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_credentials_team_id'), ['team_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('team_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_credentials_team_id'))

    op.drop_table('team_credentials')
