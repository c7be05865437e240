"""a partial index on webhook_events for retention-cleanup

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from timedify.models import RETENTION_INDEX_WHERE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # retention-cleanup walks the old finished events in (received_at, id) order instead of
    # scanning the table. Partial: a webhook is stored `received`, so the ingest INSERT never
    # touches this index; the worker adds the entry when it finishes the event.
    op.create_index(
        "ix_webhook_events_retention",
        "webhook_events",
        ["received_at", "id"],
        unique=False,
        sqlite_where=sa.text(RETENTION_INDEX_WHERE),
        postgresql_where=sa.text(RETENTION_INDEX_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_retention", table_name="webhook_events")
