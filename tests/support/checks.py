"""Checks on the event log that several test tiers share: states, attempts, exactly-once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from tests.support.helpers import events, table_rows
from timedify.db import make_engine
from timedify.models import AppliedEvent, EventAttempt, EventState, WebhookEvent


def count(db_url: str, stmt: Any) -> int:
    # Read-only: a writable SQLite connection would queue for the write lock with the workers.
    engine = make_engine(db_url, read_only=True, busy_timeout_ms=10_000)
    try:
        with engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)
    finally:
        engine.dispose()


def processed_attempts(db_url: str) -> int:
    return count(
        db_url,
        select(func.count()).select_from(EventAttempt).where(EventAttempt.outcome == "processed"),
    )


def in_state(db_url: str, *states: EventState) -> int:
    e = WebhookEvent
    return count(db_url, select(func.count()).select_from(e).where(e.state.in_(states)))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_applied_exactly_once(db_url: str, total: int) -> None:
    rows = events(db_url)
    assert len(rows) == total
    assert {r["state"] for r in rows} == {EventState.PROCESSED}
    per_event = Counter(
        a["event_pk"] for a in table_rows(db_url, EventAttempt) if a["outcome"] == "processed"
    )
    assert len(per_event) == total
    assert set(per_event.values()) == {1}, "an event was applied more than once"
    assert len(table_rows(db_url, AppliedEvent)) == total
