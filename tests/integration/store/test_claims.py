"""P1: what a claim takes, and in which order, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from tests.support.databases import fresh_database
from tests.support.helpers import execute, store_events, transaction
from tests.support.rows import event_row, insert_rows
from tests.support.settings import SHOP
from timedify.db import make_engine
from timedify.models import EventState, WebhookEvent
from timedify.store import claims
from timedify.testing import signed_webhook


def _set(db_url: str, webhook_id: str, **values: object) -> None:
    e = WebhookEvent
    execute(db_url, update(e).where(e.webhook_id == webhook_id).values(values))


def test_claim_takes_the_longest_waiting_due_events_of_every_state(db_url: str) -> None:
    """Received, retrying and expired-lease events are taken together, oldest due first, up to
    the limit; a retry not yet due and a lease still running are left alone."""
    now = datetime.now(UTC)
    hooks = store_events(db_url, [signed_webhook("app/uninstalled", SHOP, "x") for _ in range(6)])
    received_late, retry_due, expired, retry_later, leased, received_early = hooks
    _set(db_url, received_late, next_attempt_at=now - timedelta(seconds=10))
    _set(db_url, retry_due, state=EventState.RETRYING, next_attempt_at=now - timedelta(minutes=3))
    _set(
        db_url,
        expired,
        state=EventState.PROCESSING,
        next_attempt_at=now - timedelta(minutes=2),
        lease_token="gone",
        lease_expires_at=now - timedelta(seconds=1),
    )
    _set(db_url, retry_later, state=EventState.RETRYING, next_attempt_at=now + timedelta(hours=1))
    _set(
        db_url,
        leased,
        state=EventState.PROCESSING,
        next_attempt_at=now - timedelta(hours=1),
        lease_token="other",
        lease_expires_at=now + timedelta(minutes=1),
    )
    _set(db_url, received_early, next_attempt_at=now - timedelta(minutes=1))

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            first = claims.claim(conn, token="t1", limit=3, lease=timedelta(seconds=60), now=now)
        with engine.begin() as conn:
            rest = claims.claim(conn, token="t2", limit=3, lease=timedelta(seconds=60), now=now)
    finally:
        engine.dispose()
    # Within a batch, events are ordered for P5 (by when they happened), so compare sets.
    assert {e.webhook_id for e in first} == {retry_due, expired, received_early}
    assert [e.webhook_id for e in rest] == [received_late]
    assert {e.lease_token for e in first} == {"t1"}


def test_a_claim_in_a_backlog_newer_than_the_statistics_reads_its_batch_only(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """P1 on PostgreSQL: statistics taken between bursts say pending events are rare; when a
    burst has since queued thousands, a claim still walks the due index for its own batch,
    rather than fetching and sorting the whole backlog for every batch."""
    db_url = fresh_database("postgresql", request, tmp_path)
    quiet = [event_row(age=timedelta(hours=2, seconds=i)) for i in range(3000)]
    insert_rows(db_url, WebhookEvent, quiet)
    execute(db_url, text("ANALYZE webhook_events"))
    burst = [
        event_row(age=timedelta(seconds=3000 - i), state=EventState.RECEIVED) for i in range(3000)
    ]
    insert_rows(db_url, WebhookEvent, burst)

    with transaction(db_url) as conn:
        batch = claims.claim(
            conn, token="t", limit=10, lease=timedelta(seconds=60), now=datetime.now(UTC)
        )
        # This transaction's own counts: index entries the claim's scans went through.
        read = conn.execute(
            text("SELECT pg_stat_get_xact_tuples_returned('ix_webhook_events_due'::regclass)")
        ).scalar_one()
    assert [e.webhook_id for e in batch] == [row["webhook_id"] for row in burst[:10]]
    assert read < 100, f"the claim read {read} index entries for a batch of 10"
