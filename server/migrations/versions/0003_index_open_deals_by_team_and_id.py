"""index open deals by team and id

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index('ix_deals_team_status_id', ['team_id', 'status', 'id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index('ix_deals_team_status_id')


