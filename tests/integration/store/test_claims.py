"""P1: what a claim takes, and in which order, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.support.helpers import execute, store_events
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
