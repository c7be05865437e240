"""expiring offline tokens and the shop's billing and reconciliation state

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from timedify.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.add_column(sa.Column("subscription_active", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("subscription_checked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("needs_reauth_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("synced_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("refresh_token", sa.Text(), nullable=True))
        batch.add_column(sa.Column("refresh_token_expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("refresh_token_expires_at")
        batch.drop_column("refresh_token")
    with op.batch_alter_table("shops") as batch:
        batch.drop_column("synced_at")
        batch.drop_column("needs_reauth_at")
        batch.drop_column("subscription_checked_at")
        batch.drop_column("subscription_active")
