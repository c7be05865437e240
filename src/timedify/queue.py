"""Every SQL statement of the worker: claiming with leases, heartbeats, outcomes (SPEC P1-P3).

An event is claimed by setting it to `processing` with a fresh `lease_token` and an expiry; every
later write about it is fenced on that token (`WHERE id = :id AND lease_token = :token`), so a
worker whose lease expired and was taken over cannot write anything any more. On PostgreSQL the
claim locks rows with `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches; on
SQLite every write transaction starts with `BEGIN IMMEDIATE` (db.py), the single writer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from timedify.models import (
    PENDING_STATES,
    AppliedEvent,
    DeadLetter,
    EventAttempt,
    EventState,
    WebhookEvent,
    WorkerHeartbeat,
)


@dataclass(frozen=True)
class ClaimedEvent:
    """An event this worker holds a lease on, with what its handler needs."""

    id: int
    webhook_id: str
    topic: str
    shop_domain: str
    event_id: str | None
    triggered_at: datetime | None
    received_at: datetime
    payload: bytes
    attempts: int
    lease_token: str

    @property
    def event_key(self) -> str:
        """The merchant action's identity: the event id, else this delivery's webhook id (W3)."""
        return self.event_id or self.webhook_id


_E = WebhookEvent
_COLUMNS = (
    _E.id,
    _E.webhook_id,
    _E.topic,
    _E.shop_domain,
    _E.event_id,
    _E.triggered_at,
    _E.received_at,
    _E.payload,
    _E.attempts,
    _E.lease_token,
)


def claim(
    conn: Connection, *, token: str, limit: int, lease: timedelta, now: datetime
) -> list[ClaimedEvent]:
    """Lease up to `limit` due events: pending ones whose time has come, and expired leases."""
    ids = _due(conn, limit, now)
    if not ids:
        return []
    rows = conn.execute(_lease(_E.id.in_(ids), token, now + lease))
    events = [ClaimedEvent(**row._mapping) for row in rows]
    # P5: within a batch, apply a shop's events in the order Shopify says they happened.
    return sorted(events, key=lambda e: (e.triggered_at or e.received_at, e.id))


# What is due, one query per state: `state = ? ... ORDER BY next_attempt_at, id` walks the
# (state, next_attempt_at) index in order and stops after `limit` rows. One query over all the
# states (an OR, or `state IN`) cannot stop early: both databases collect every due row and sort
# them, ~60 ms per claim with a backlog of 100,000 events on PostgreSQL, most of a drain's time.
def _due(conn: Connection, limit: int, now: datetime) -> list[int]:
    """The ids of the `limit` due events that have waited longest (by `next_attempt_at`)."""
    conditions = [(_E.state == state, _E.next_attempt_at <= now) for state in PENDING_STATES]
    conditions.append((_E.state == EventState.PROCESSING, _E.lease_expires_at < now))
    found: list[tuple[datetime, int]] = []
    for condition in conditions:
        pick = select(_E.next_attempt_at, _E.id).where(*condition)
        pick = pick.order_by(_E.next_attempt_at, _E.id).limit(limit)
        if conn.dialect.name == "postgresql":
            # Rows another worker is claiming are skipped; those picked here but beyond the
            # first `limit` of all states are unlocked again when the claim commits.
            pick = pick.with_for_update(skip_locked=True)
        found.extend(conn.execute(pick).tuples())
    return [event_pk for _at, event_pk in sorted(found)[:limit]]


def _lease(which: Any, token: str, until: datetime) -> Any:
    """Take the events `which` selects: processing under `token` until `until`, one more try."""
    return (
        update(_E)
        .where(which)
        .values(
            state=EventState.PROCESSING,
            lease_token=token,
            lease_expires_at=until,
            attempts=_E.attempts + 1,
        )
        .returning(*_COLUMNS)
    )


def claim_dead(
    conn: Connection, event_pk: int, *, token: str, lease: timedelta, now: datetime
) -> ClaimedEvent | None:
    """Lease one dead event for a replay; None when it is not (or no longer) dead."""
    dead = and_(_E.id == event_pk, _E.state == EventState.DEAD)
    row = conn.execute(_lease(dead, token, now + lease)).first()
    return ClaimedEvent(**row._mapping) if row is not None else None


# Statements the worker runs for every event are built once, with bound parameters: building a
# SQLAlchemy statement costs more than executing it, and the drain rate is per-event work.
_FENCED = and_(
    _E.id == bindparam("event_pk"),
    _E.lease_token == bindparam("token"),
    _E.state == EventState.PROCESSING,
)
_HOLD = update(_E).where(_FENCED).values(lease_token=bindparam("token"))
_FINISH = (
    update(_E)
    .where(_FENCED)
    .values(
        state=bindparam("new_state"),
        processed_at=bindparam("now"),
        lease_token=None,
        lease_expires_at=None,
        last_error=None,
        note=bindparam("note"),
    )
)
_ATTEMPT = insert(EventAttempt)


def _fence(event: ClaimedEvent) -> dict[str, Any]:
    return {"event_pk": event.id, "token": event.lease_token}


def _fenced(event: ClaimedEvent) -> Any:
    return and_(
        _E.id == event.id,
        _E.lease_token == event.lease_token,
        _E.state == EventState.PROCESSING,
    )


def hold(conn: Connection, event: ClaimedEvent) -> bool:
    """Lock the event's row for this transaction; False when the lease was lost to another."""
    return conn.execute(_HOLD, _fence(event)).rowcount == 1


def record_applied(conn: Connection, event: ClaimedEvent, now: datetime) -> bool:
    """Enter the merchant action in the exactly-once ledger; False when already applied (W3)."""
    values = {
        "topic": event.topic,
        "event_key": event.event_key,
        "event_pk": event.id,
        "applied_at": now,
    }
    return conn.execute(_ledger_insert(conn.dialect.name), values).first() is not None


def finish(
    conn: Connection, event: ClaimedEvent, state: EventState, note: str | None, now: datetime
) -> bool:
    """Mark a held event processed or ignored and give up its lease."""
    params = {**_fence(event), "new_state": state, "now": now, "note": note}
    return conn.execute(_FINISH, params).rowcount == 1


def schedule_retry(conn: Connection, event: ClaimedEvent, at: datetime, error: str) -> bool:
    """Put a failed event back for another attempt at `at` (P2)."""
    result = conn.execute(
        update(_E)
        .where(_fenced(event))
        .values(
            state=EventState.RETRYING,
            next_attempt_at=at,
            lease_token=None,
            lease_expires_at=None,
            last_error=error,
        )
    )
    return result.rowcount == 1


def bury(
    conn: Connection,
    event: ClaimedEvent,
    *,
    error: str,
    stack: str,
    now: datetime,
    replay: bool,
) -> bool:
    """Make the event a dead letter, or keep it one with its new count and error (P3)."""
    result = conn.execute(
        update(_E)
        .where(_fenced(event))
        .values(state=EventState.DEAD, lease_token=None, lease_expires_at=None, last_error=error)
    )
    if result.rowcount != 1:
        return False
    first = conn.execute(
        select(func.min(EventAttempt.finished_at)).where(
            EventAttempt.event_pk == event.id, EventAttempt.outcome != EventState.PROCESSED
        )
    ).scalar()
    values = {
        "event_pk": event.id,
        "topic": event.topic,
        "shop_domain": event.shop_domain,
        "error": error,
        "stack": stack,
        "attempts": event.attempts,
        "first_failed_at": first or now,
        "last_failed_at": now,
        "replays": 1 if replay else 0,
        "resolved_at": None,
        "resolution": None,
    }
    d = DeadLetter.__table__
    stmt = _dialect_insert(conn, d).values(values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["event_pk"],
            set_={
                "error": error,
                "stack": stack,
                "attempts": event.attempts,
                "last_failed_at": now,
                "replays": d.c.replays + (1 if replay else 0),
                "resolved_at": None,
                "resolution": None,
            },
        )
    )
    return True


def record_attempt(
    conn: Connection,
    event: ClaimedEvent,
    *,
    started: datetime,
    finished: datetime,
    outcome: str,
    error_class: str | None = None,
    error: str | None = None,
) -> None:
    """One row per attempt: its outcome and, for failures, the error class and message (P2)."""
    conn.execute(
        _ATTEMPT,
        {
            "event_pk": event.id,
            "attempt": event.attempts,
            "started_at": started,
            "finished_at": finished,
            "outcome": outcome,
            "error_class": error_class,
            "error": error,
        },
    )


def resolve_dead_letter(conn: Connection, event_pk: int, now: datetime, resolution: str) -> None:
    """A dead letter whose event was applied after all (a replay) is resolved."""
    d = DeadLetter
    conn.execute(
        update(d)
        .where(d.event_pk == event_pk, d.resolved_at.is_(None))
        .values(resolved_at=now, resolution=resolution, replays=d.replays + 1)
    )


def extend_leases(conn: Connection, token: str, until: datetime) -> int:
    """Keep the events this worker still holds (a heartbeat)."""
    result = conn.execute(
        update(_E)
        .where(_E.lease_token == token, _E.state == EventState.PROCESSING)
        .values(lease_expires_at=until)
    )
    return int(result.rowcount)


def release(conn: Connection, tokens: Sequence[str]) -> int:
    """Give back events claimed but not started (shutdown): due again at once, attempt undone."""
    if not tokens:
        return 0
    result = conn.execute(
        update(_E)
        .where(_E.lease_token.in_(tokens), _E.state == EventState.PROCESSING)
        .values(
            state=case((_E.attempts <= 1, EventState.RECEIVED.value), else_=EventState.RETRYING),
            attempts=_E.attempts - 1,
            lease_token=None,
            lease_expires_at=None,
        )
    )
    return int(result.rowcount)


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str
    hostname: str
    pid: int
    started_at: datetime


def heartbeat(
    conn: Connection,
    me: WorkerIdentity,
    *,
    now: datetime,
    processed: int,
    stopped: bool = False,
) -> None:
    """Upsert this worker's heartbeat row; `/health` reads the newest running one."""
    values = {
        "worker_id": me.worker_id,
        "hostname": me.hostname,
        "pid": me.pid,
        "started_at": me.started_at,
        "last_seen_at": now,
        "stopped_at": now if stopped else None,
        "processed": processed,
    }
    stmt = _dialect_insert(conn, WorkerHeartbeat.__table__).values(values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["worker_id"],
            set_={k: values[k] for k in ("last_seen_at", "stopped_at", "processed")},
        )
    )


def forget_stopped_workers(conn: Connection, before: datetime) -> None:
    """Heartbeat rows of workers stopped long ago are noise."""
    w = WorkerHeartbeat
    conn.execute(delete(w).where(w.stopped_at.is_not(None), w.stopped_at < before))


@functools.cache
def _ledger_insert(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(AppliedEvent.__table__).on_conflict_do_nothing(
        index_elements=["topic", "event_key"]
    )
    return stmt.returning(AppliedEvent.topic)


def _dialect_insert(conn: Connection, table: Table | Any) -> Any:
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)
