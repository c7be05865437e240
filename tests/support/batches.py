"""Claimed batches processed as the worker does, for the tests of `processing.batches`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from timedify.db import make_engine
from timedify.processing import batches
from timedify.processing.handlers import HANDLERS, Handler
from timedify.processing.retry import RetryPolicy
from timedify.records import ClaimedEvent, Outcome
from timedify.store import claims


def claimed(db_url: str, *, limit: int = 500) -> list[ClaimedEvent]:
    """Claim up to `limit` due events under the lease token `t`."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            lease = timedelta(seconds=60)
            return claims.claim(conn, token="t", limit=limit, lease=lease, now=datetime.now(UTC))
    finally:
        engine.dispose()


def in_batches(
    db_url: str,
    policy: RetryPolicy,
    handlers: Mapping[str, Handler] = HANDLERS,
    *,
    limit: int = 500,
) -> list[Outcome]:
    """Claim every due event and process the batch as the worker does: each call processes
    the front of what is left (a generous time bound, but a failure ends a transaction)."""
    batch = claimed(db_url, limit=limit)
    engine = make_engine(db_url)
    outcomes: list[Outcome] = []
    try:
        while len(outcomes) < len(batch):
            outcomes += batches.process_batch(
                engine, batch[len(outcomes) :], policy=policy, handlers=handlers, max_seconds=60
            )
    finally:
        engine.dispose()
    return outcomes
