"""store.reports: the aggregates of `status` and `alerting-check`, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.rows import (
    ComplianceRequest,
    WebhookEvent,
    compliance_row,
    event_row,
    insert_rows,
)
from timedify.db import make_engine
from timedify.ingest.webhooks import COMPLIANCE_TOPICS
from timedify.models import EventState
from timedify.store import reports


def test_compliance_counts_open_overdue_and_due_by(db_url: str) -> None:
    insert_rows(
        db_url,
        ComplianceRequest,
        [
            compliance_row(deadline_in=timedelta(days=-1)),  # overdue
            compliance_row(deadline_in=timedelta(days=3)),
            compliance_row(deadline_in=timedelta(days=20)),
            compliance_row(deadline_in=timedelta(days=-5), completed_age=timedelta(days=1)),
        ],
    )
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert reports.compliance_open_and_overdue(conn, now) == (3, 1)
        assert reports.compliance_due_by(conn, now + timedelta(days=7), now) == (2, 1)
    engine.dispose()


def test_unapplied_compliance_webhooks_count_from_receipt(db_url: str) -> None:
    old = event_row(age=timedelta(days=28), state=EventState.DEAD, topic="customers/redact")
    fresh = event_row(age=timedelta(days=1), state=EventState.RECEIVED, topic="shop/redact")
    done = event_row(age=timedelta(days=29), state=EventState.PROCESSED, topic="shop/redact")
    smoke = {**event_row(age=timedelta(days=29), state=EventState.DEAD), "synthetic": True}
    insert_rows(db_url, WebhookEvent, [old, fresh, done, smoke])
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        counts = reports.unapplied_compliance_due_by(
            conn, COMPLIANCE_TOPICS, timedelta(days=30), now + timedelta(days=7), now
        )
    engine.dispose()
    assert counts == (1, 0)  # the dead one is due within 7 days; none is overdue yet


def test_latency_samples_leave_synthetic_and_unprocessed_events_out(db_url: str) -> None:
    real = event_row(age=timedelta(minutes=5))
    smoke = {**event_row(age=timedelta(minutes=5)), "synthetic": True}
    waiting = event_row(age=timedelta(minutes=5), state=EventState.RECEIVED)
    real["processed_at"] = real["received_at"] + timedelta(seconds=2)
    insert_rows(db_url, WebhookEvent, [real, smoke, waiting])
    engine = make_engine(db_url)
    with engine.connect() as conn:
        seconds = reports.processing_seconds(conn, datetime.now(UTC) - timedelta(hours=1), 100)
        attempts = reports.handler_seconds(conn, datetime.now(UTC) - timedelta(hours=1), 100)
    engine.dispose()
    assert seconds == [2.0]
    assert attempts == []
