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
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from timedify.models import (
    PENDING_STATES,
    AppliedEvent,
    DeadLetter,
    EventAttempt,
    EventState,
    WebhookEvent,
    WorkerHeartbeat,
)
from timedify.records import ClaimedEvent, Done
from timedify.store import bulk
from timedify.store.prepared import Prepared, dialect_insert

_E = WebhookEvent
# The columns a claim returns, in the order of ClaimedEvent's fields (rows become events as is).
_COLUMNS = tuple(_E.__table__.c[field.name] for field in fields(ClaimedEvent))


def claim(
    conn: Connection, *, token: str, limit: int, lease: timedelta, now: datetime
) -> list[ClaimedEvent]:
    """Lease up to `limit` due events: pending ones whose time has come, and expired leases."""
    if bulk.is_postgres(conn):
        conn.execute(_ORDERED_WALK)
    ids = _due(conn, limit, now)
    if not ids:
        return []
    rows = conn.execute(_CLAIM, {"ids": ids, "token": token, "until": now + lease})
    events = [ClaimedEvent(*row) for row in rows]
    # P5: within a batch, apply a shop's events in the order Shopify says they happened.
    return sorted(events, key=lambda e: (e.triggered_at or e.received_at, e.id))


# What is due, one query per state: `state = ? ... ORDER BY next_attempt_at, id` walks the
# (state, next_attempt_at) index in order and stops after `limit` rows. One query over all the
# states (an OR, or `state IN`) cannot stop early: both databases collect every due row and sort
# them, which with a big backlog is most of a drain's time.
# On PostgreSQL rows another worker is claiming are skipped (SQLite has one writer at a time and
# no FOR UPDATE); rows picked here beyond the first `limit` of all states unlock at the commit.
#
# On PostgreSQL, for the claim's transaction: no explicit sort. Planned from statistics older
# than a burst (autovacuum analyzes a minute later at best), with pending rows estimated rare as
# they are between bursts, these become a bitmap scan that fetches and sorts every pending row,
# and passes every dead index entry of the rows claimed since the last vacuum (only an ordered
# index scan marks them dead): 10-40 ms per claim in a backlog of 60,000, a quadratic drain.
# With no sort allowed the index walk is the only ordered path, as for retention's batches.
_ORDERED_WALK = text("SELECT set_config('enable_sort', 'off', true)")


def _pick(*due: Any) -> Prepared:
    return Prepared(
        select(_E.next_attempt_at, _E.id)
        .where(*due)
        .order_by(_E.next_attempt_at, _E.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


_DUE = (
    *(_pick(_E.state == state, _E.next_attempt_at <= bindparam("now")) for state in PENDING_STATES),
    _pick(_E.state == EventState.PROCESSING, _E.lease_expires_at < bindparam("now")),
)


def _due(conn: Connection, limit: int, now: datetime) -> list[int]:
    """The ids of the `limit` due events that have waited longest (by `next_attempt_at`)."""
    found = [row for due in _DUE for row in due.rows(conn, {"now": now, "limit": limit})]
    return [event_pk for _at, event_pk in sorted(found)[:limit]]


def _lease(which: Any) -> Any:
    """Take the events `which` selects: processing under `token` until `until`, one more try."""
    return (
        update(_E)
        .where(which)
        .values(
            state=EventState.PROCESSING,
            lease_token=bindparam("token"),
            lease_expires_at=bindparam("until"),
            attempts=_E.attempts + 1,
        )
        .returning(*_COLUMNS)
    )


_CLAIM = _lease(_E.id.in_(bindparam("ids", expanding=True)))
_CLAIM_DEAD = _lease(and_(_E.id == bindparam("event_pk"), _E.state == EventState.DEAD))


def claim_dead(
    conn: Connection, event_pk: int, *, token: str, lease: timedelta, now: datetime
) -> ClaimedEvent | None:
    """Lease one dead event for a replay; None when it is not (or no longer) dead."""
    params = {"event_pk": event_pk, "token": token, "until": now + lease}
    row = conn.execute(_CLAIM_DEAD, params).first()
    return ClaimedEvent(*row) if row is not None else None


# Statements the worker runs for every event are built once, with bound parameters, and run on
# the raw DBAPI cursor (`prepared`): SQLAlchemy's execution layer costs several times what
# SQLite spends on one of these, and the drain rate is per-event work.
_FENCED = and_(
    _E.id == bindparam("event_pk"),
    _E.lease_token == bindparam("token"),
    _E.state == EventState.PROCESSING,
)
_HOLD = Prepared(update(_E).where(_FENCED).values(lease_token=bindparam("token")))
_FINISH = Prepared(
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
_ATTEMPT_COLUMNS = ("event_pk", "attempt", "started_at", "finished_at", "outcome")
_ATTEMPT = Prepared(insert(EventAttempt), [*_ATTEMPT_COLUMNS, "error_class", "error"])


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
    return _HOLD.execute(conn, _fence(event)) == 1


def hold_all(conn: Connection, events: Sequence[ClaimedEvent]) -> set[int]:
    """Lock the rows of `events` for this transaction; the ids whose lease is still ours.

    A read, not a write: on SQLite the transaction's write lock (BEGIN IMMEDIATE) already keeps
    every other writer out until the commit, on PostgreSQL `FOR UPDATE` keeps other workers'
    claims off these rows (their `SKIP LOCKED` passes them by) until the commit.
    """
    held: set[int] = set()
    statement = _hold_all(conn.dialect.name)
    for token in {event.lease_token for event in events}:
        ids = [event.id for event in events if event.lease_token == token]
        held.update(conn.scalars(statement, {"ids": ids, "token": token}))
    return held


@functools.cache
def _hold_all(dialect: str) -> Any:
    return (
        select(_E.id)
        .where(
            bulk.one_of(_E.__table__.c.id, "ids", dialect),
            _E.lease_token == bindparam("token"),
            _E.state == EventState.PROCESSING,
        )
        .with_for_update()
    )


def record_applied(conn: Connection, event: ClaimedEvent, now: datetime) -> bool:
    """Enter the merchant action in the exactly-once ledger; False when already applied (W3)."""
    values = {
        "topic": event.topic,
        "event_key": event.event_key,
        "event_pk": event.id,
        "applied_at": now,
    }
    return _ledger_insert(conn.dialect.name).execute(conn, values) == 1


def record_applied_all(conn: Connection, events: Sequence[ClaimedEvent], now: datetime) -> set[int]:
    """`record_applied` for many events in one statement; the ids of those entered now.

    An event not entered was applied before (W3), or shares its merchant action with an earlier
    event of `events`. On PostgreSQL a concurrent transaction entering the same action makes
    this wait for its commit, as the single INSERT does.
    """
    if not events:
        return set()
    rows = [
        {"topic": e.topic, "event_key": e.event_key, "event_pk": e.id, "applied_at": now}
        for e in events
    ]
    ledger = AppliedEvent.__table__
    if bulk.is_postgres(conn):
        result = bulk.insert_rows(
            conn, AppliedEvent, rows, conflict="(topic, event_key) DO NOTHING", returning="event_pk"
        )
        return {int(pk) for (pk,) in result}
    stmt = (
        dialect_insert(conn.dialect.name, ledger)
        .on_conflict_do_nothing(index_elements=["topic", "event_key"])
        .returning(AppliedEvent.event_pk)
    )
    return {int(pk) for pk in conn.scalars(stmt, rows)}


def forget_applied(conn: Connection, events: Sequence[ClaimedEvent]) -> None:
    """Take events out of the ledger again: entered in this transaction, then not applied."""
    if not events:
        return
    keys = [{"topic": e.topic, "event_key": e.event_key, "event_pk": e.id} for e in events]
    if bulk.is_postgres(conn):
        bulk.delete_rows(conn, AppliedEvent, keys, match=tuple(keys[0]))
    else:
        _FORGET_APPLIED.executemany(conn, keys)


_A = AppliedEvent
_FORGET_APPLIED = Prepared(  # by the primary key: the ledger is large and event_pk not indexed
    delete(_A).where(
        _A.topic == bindparam("topic"),
        _A.event_key == bindparam("event_key"),
        _A.event_pk == bindparam("event_pk"),
    )
)


def finish(conn: Connection, done: Sequence[Done]) -> bool:
    """Mark held events processed or ignored, give up their leases and record their attempts,
    one statement of each for all of them. False when any of them was not held: the caller
    must then roll back, as some of `done` were marked and some not."""
    if not done:
        return True
    attempts = [
        {**_attempt(d.event, d.started, d.finished, d.state), "error_class": None, "error": None}
        for d in done
    ]
    if bulk.is_postgres(conn):
        marks = [
            {
                "id": d.event.id,
                "lease_token": d.event.lease_token,
                "state": str(d.state),
                "processed_at": d.finished,
                "note": d.note,
            }
            for d in done
        ]
        changed = bulk.update_rows(
            conn, _E, marks, match=("id", "lease_token"), assign=_MARK, where=_HELD
        )
        if changed != len(done):
            return False
        bulk.insert_rows(conn, EventAttempt, attempts)
        return True
    marks = [
        {**_fence(d.event), "new_state": d.state, "now": d.finished, "note": d.note} for d in done
    ]
    if _FINISH.executemany(conn, marks) != len(done):
        return False
    _ATTEMPT.executemany(conn, attempts)
    return True


_HELD = f"{_E.__tablename__}.state = '{EventState.PROCESSING}'"
_MARK = (
    "state = v.state, processed_at = v.processed_at, note = v.note,"
    " lease_token = NULL, lease_expires_at = NULL, last_error = NULL"
)


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
    stmt = dialect_insert(conn.dialect.name, d).values(values)
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
    row = _attempt(event, started, finished, outcome)
    _ATTEMPT.execute(conn, {**row, "error_class": error_class, "error": error})


def _attempt(event: ClaimedEvent, started: datetime, finished: datetime, outcome: str) -> Any:
    values = (event.id, event.attempts, started, finished, outcome)
    return dict(zip(_ATTEMPT_COLUMNS, values, strict=True))


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
    stmt = dialect_insert(conn.dialect.name, WorkerHeartbeat.__table__).values(values)
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
def _ledger_insert(dialect: str) -> Prepared:
    stmt = dialect_insert(dialect, AppliedEvent.__table__).on_conflict_do_nothing(
        index_elements=["topic", "event_key"]
    )
    return Prepared(stmt)
