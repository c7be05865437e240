"""Every SQL statement of the ingest path and the read-only status queries.

Functions take a connection and return plain values; they hold no state. The worker's and the
toolkit's statements live in their own modules under the same rule (`queue`, `deadletters`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from timedify.models import (
    PENDING_STATES,
    DeadLetter,
    EventAttempt,
    EventState,
    WebhookEvent,
    WorkerHeartbeat,
    webhook_events,
)

_INSERT_CACHE: dict[str, Insert] = {}
# Attempt outcomes that are failures (an ignored duplicate or stale event is not one).
FAILED_OUTCOMES = (EventState.RETRYING, EventState.DEAD)


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id, for this dialect."""
    if dialect not in _INSERT_CACHE:
        module: Any = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(webhook_events).on_conflict_do_nothing(index_elements=["webhook_id"])
        _INSERT_CACHE[dialect] = stmt.returning(webhook_events.c.webhook_id)
    return _INSERT_CACHE[dialect]


def insert_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store deliveries in the caller's transaction; return the webhook ids that were new (W3)."""
    if not rows:
        return set()
    result = conn.execute(_insert_ignoring_duplicates(conn.dialect.name), list(rows))
    return {row[0] for row in result}


@dataclass(frozen=True)
class TopicBacklog:
    pending: int
    oldest_received_at: datetime | None


def backlog_by_topic(conn: Connection) -> dict[str, TopicBacklog]:
    """Events waiting for the worker, per topic, with the age of the oldest (synthetic excluded)."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.topic, func.count(), func.min(e.received_at))
        .where(e.state.in_([*PENDING_STATES, EventState.PROCESSING]), e.synthetic.is_(False))
        .group_by(e.topic)
    )
    return {topic: TopicBacklog(count, oldest) for topic, count, oldest in rows}


def dead_letters_by_topic(conn: Connection) -> dict[str, int]:
    """Unresolved dead letters per topic."""
    d = DeadLetter
    rows = conn.execute(
        select(d.topic, func.count()).where(d.resolved_at.is_(None)).group_by(d.topic)
    )
    return {str(topic): int(count) for topic, count in rows}


def latest_heartbeat(conn: Connection) -> datetime | None:
    """When a running worker last reported in (stopped workers do not count)."""
    return conn.execute(
        select(func.max(WorkerHeartbeat.last_seen_at)).where(WorkerHeartbeat.stopped_at.is_(None))
    ).scalar()


@dataclass(frozen=True)
class TopicActivity:
    """Per-topic activity for `/health/webhooks` (H2)."""

    last_received_at: datetime | None = None
    last_processed_at: datetime | None = None
    pending: int = 0
    oldest_pending_at: datetime | None = None
    received_in_window: int = 0
    failures_in_window: int = 0
    dead_letters_in_window: int = 0


def activity_by_topic(conn: Connection, since: datetime) -> dict[str, TopicActivity]:
    """Received / processed / pending / failures / dead letters per topic since `since`."""
    e, a, d = WebhookEvent, EventAttempt, DeadLetter
    real = e.synthetic.is_(False)
    stats: dict[str, dict[str, Any]] = {}
    for topic, last_rx, last_done, in_window in conn.execute(
        select(
            e.topic,
            func.max(e.received_at),
            func.max(e.processed_at),
            func.count().filter(e.received_at >= since),
        )
        .where(real)
        .group_by(e.topic)
    ):
        stats.setdefault(topic, {}).update(
            last_received_at=last_rx,
            last_processed_at=last_done,
            received_in_window=in_window,
        )
    for topic, backlog in backlog_by_topic(conn).items():
        stats.setdefault(topic, {}).update(
            pending=backlog.pending, oldest_pending_at=backlog.oldest_received_at
        )
    for topic, failures in conn.execute(
        select(e.topic, func.count())
        .join(a, a.event_pk == e.id)
        .where(and_(a.outcome.in_(FAILED_OUTCOMES), a.finished_at >= since, real))
        .group_by(e.topic)
    ):
        stats.setdefault(topic, {})["failures_in_window"] = failures
    for topic, dead in conn.execute(
        select(d.topic, func.count()).where(d.last_failed_at >= since).group_by(d.topic)
    ):
        stats.setdefault(topic, {})["dead_letters_in_window"] = dead
    return {topic: TopicActivity(**values) for topic, values in stats.items()}
