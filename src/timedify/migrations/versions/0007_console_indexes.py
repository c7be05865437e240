"""indexes for the operator console's keyset pages, chart and per-topic activity

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from timedify.models import RARE_STATES_WHERE

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLE = "webhook_events"


def upgrade() -> None:
    # Events newest first, filtered or not, one index seek per page (C3). The shop and topic
    # indexes are replaced by wider ones (same count of B-trees for the ingest INSERT); the
    # state index is partial on states an ingest INSERT never writes.
    op.drop_index("ix_webhook_events_shop", table_name=_TABLE)
    op.drop_index("ix_webhook_events_topic_received", table_name=_TABLE)
    op.create_index("ix_webhook_events_received", _TABLE, ["received_at", "id"])
    op.create_index("ix_webhook_events_shop_received", _TABLE, ["shop_domain", "received_at", "id"])
    op.create_index("ix_webhook_events_topic_received", _TABLE, ["topic", "received_at", "id"])
    op.create_index(
        "ix_webhook_events_state_received",
        _TABLE,
        ["state", "received_at", "id"],
        sqlite_where=sa.text(RARE_STATES_WHERE),
        postgresql_where=sa.text(RARE_STATES_WHERE),
    )
    # The newest processed event per topic, read along an index (`/health/webhooks`).
    op.create_index(
        "ix_webhook_events_topic_processed",
        _TABLE,
        ["topic", "processed_at"],
        sqlite_where=sa.text("processed_at IS NOT NULL"),
        postgresql_where=sa.text("processed_at IS NOT NULL"),
    )
    # The chart's processed and failed attempts of the last 24 h (C2).
    op.create_index("ix_event_attempts_finished_at", "event_attempts", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_event_attempts_finished_at", table_name="event_attempts")
    op.drop_index("ix_webhook_events_state_received", table_name=_TABLE)
    op.drop_index("ix_webhook_events_topic_processed", table_name=_TABLE)
    op.drop_index("ix_webhook_events_topic_received", table_name=_TABLE)
    op.drop_index("ix_webhook_events_shop_received", table_name=_TABLE)
    op.drop_index("ix_webhook_events_received", table_name=_TABLE)
    op.create_index("ix_webhook_events_topic_received", _TABLE, ["topic", "received_at"])
    op.create_index("ix_webhook_events_shop", _TABLE, ["shop_domain"])
