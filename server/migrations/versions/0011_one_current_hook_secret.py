"""one current webhook secret per team: a partial unique index on hook_secrets

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

import server.core.models.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A team with two current secrets (left by two creates that raced) keeps its newest one
    # current; the other is rotated out, still accepted for a day from now.
    secrets = sa.table(
        'hook_secrets',
        sa.column('id', sa.Integer),
        sa.column('team_id', sa.Integer),
        sa.column('expires_at', server.core.models.base.UTCDateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(secrets.c.id, secrets.c.team_id)
        .where(secrets.c.expires_at.is_(None))
        .order_by(secrets.c.team_id, secrets.c.id.desc())
    ).all()
    newest: set[int] = set()
    older = []
    for secret_id, team_id in rows:
        if team_id in newest:
            older.append(secret_id)
        newest.add(team_id)
    if older:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        bind.execute(secrets.update().where(secrets.c.id.in_(older)).values(expires_at=until))
    with op.batch_alter_table('hook_secrets', schema=None) as batch_op:
        batch_op.create_index(
            'uq_hook_secrets_current',
            ['team_id'],
            unique=True,
            postgresql_where=sa.text('expires_at IS NULL'),
            sqlite_where=sa.text('expires_at IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('hook_secrets', schema=None) as batch_op:
        batch_op.drop_index('uq_hook_secrets_current')
