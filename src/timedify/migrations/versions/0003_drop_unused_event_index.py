"""drop the (topic, event_id) index on webhook_events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No query reads it (the exactly-once ledger has its own key), and every acknowledged
    # webhook paid for maintaining it: B-tree work is a large part of the per-row ingest cost.
    op.drop_index("ix_webhook_events_topic_event", table_name="webhook_events")


def downgrade() -> None:
    op.create_index(
        "ix_webhook_events_topic_event", "webhook_events", ["topic", "event_id"], unique=False
    )
