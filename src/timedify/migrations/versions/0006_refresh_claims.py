"""a refresh claim on the offline session, so no database lock is held while Shopify answers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from timedify.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("refresh_claim", sa.String(64), nullable=True))
        batch.add_column(sa.Column("refresh_claimed_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("refresh_claimed_until")
        batch.drop_column("refresh_claim")
