"""processing: a note on events, the time of a shop's recorded scopes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why an event was not applied (duplicate merchant action, stale, replayed ...), for operators.
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    # P5: when the recorded scopes were current, so an older app/scopes_update cannot win.
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes_updated_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("scopes_updated_at")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_column("note")
