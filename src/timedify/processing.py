"""Apply claimed events exactly once, or record why not (SPEC P2, P3, W3).

Applying one event: hold its row (fenced on the lease token), enter the merchant action in the
exactly-once ledger, run the handler, mark the event and record the attempt — all or nothing. If
the handler fails, that rolls back and the attempt is recorded with a retry or a dead letter.

`process_batch` (the worker) applies several events in one transaction, each inside its own
savepoint, so a failing event rolls back alone while the batch shares one commit: one fsync for
many events instead of one each. `process` (the dead-letter replay) does one event on its own.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from timedify import queue
from timedify.handlers import HANDLERS, Handler
from timedify.models import EventState, utcnow
from timedify.queue import ClaimedEvent
from timedify.redaction import redact_text
from timedify.retry import RetryPolicy

DUPLICATE_NOTE = "duplicate: this merchant action (X-Shopify-Event-Id) was already applied"
_MAX_ERROR = 500


class LeaseLost(Exception):
    """Another worker took the event over (our lease expired); we must not write anything."""


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: processed, ignored, retrying, dead, or lost (lease)."""

    state: str
    note: str | None = None
    error_class: str | None = None
    error: str | None = None


def process(
    engine: Engine,
    event: ClaimedEvent,
    *,
    policy: RetryPolicy,
    handlers: Mapping[str, Handler] = HANDLERS,
    rng: random.Random | None = None,
    replay: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> Outcome:
    """Run the event's handler and persist the outcome. A replay that fails stays dead (P3)."""
    started = clock()
    try:
        with engine.begin() as conn:
            return _apply(conn, event, handlers, started, clock, replay)
    except LeaseLost:
        return Outcome("lost")
    except Exception as exc:
        rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        with engine.begin() as conn:
            return _failed(conn, event, exc, policy, rng, started, clock, replay)


def process_batch(
    engine: Engine,
    events: Sequence[ClaimedEvent],
    *,
    policy: RetryPolicy,
    handlers: Mapping[str, Handler] = HANDLERS,
    rng: random.Random | None = None,
    clock: Callable[[], datetime] = utcnow,
    max_seconds: float = 0.02,
    stopping: Callable[[], bool] = lambda: False,
) -> list[Outcome]:
    """Process events in one transaction, one savepoint each; the outcomes of those processed.

    The transaction takes events from the front of `events` until `max_seconds` have passed (it
    holds SQLite's single write lock meanwhile, and webhook commits wait for that), so it may
    return fewer outcomes than events; the caller passes the rest again. It also ends early when
    `stopping()` says so (a graceful stop finishes the event in hand, not the batch). The
    outcomes hold once this returns (the commit happened); if the commit fails, nothing of the
    batch was written and the exception propagates: the events keep their leases, never
    half-applied.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + max_seconds
    with engine.begin() as conn:
        for event in events:
            if outcomes and (time.monotonic() > deadline or stopping()):
                break
            started = clock()
            savepoint = conn.begin_nested()
            try:
                outcome = _apply(conn, event, handlers, started, clock, replay=False)
                savepoint.commit()
            except LeaseLost:
                savepoint.rollback()
                outcome = Outcome("lost")
            except Exception as exc:
                savepoint.rollback()
                outcome = _failed(conn, event, exc, policy, rng, started, clock, replay=False)
            outcomes.append(outcome)
    return outcomes


def _apply(
    conn: Connection,
    event: ClaimedEvent,
    handlers: Mapping[str, Handler],
    started: datetime,
    clock: Callable[[], datetime],
    replay: bool,
) -> Outcome:
    if not queue.hold(conn, event):
        raise LeaseLost
    handler = handlers.get(event.topic)
    note: str | None
    if handler is None:
        note = "no handler for this topic"
    elif not queue.record_applied(conn, event, clock()):
        note = DUPLICATE_NOTE
    else:
        note = handler(conn, event, clock())
    state = EventState.PROCESSED if note is None else EventState.IGNORED
    finished = clock()
    if not queue.finish(conn, event, state, note, finished):
        raise LeaseLost
    queue.record_attempt(conn, event, started=started, finished=finished, outcome=state)
    if replay:
        queue.resolve_dead_letter(conn, event.id, finished, "replayed")
    return Outcome(state, note)


def _failed(
    conn: Connection,
    event: ClaimedEvent,
    exc: Exception,
    policy: RetryPolicy,
    rng: random.Random,
    started: datetime,
    clock: Callable[[], datetime],
    replay: bool,
) -> Outcome:
    error_class = type(exc).__name__
    # Exception messages may quote payload values (customer e-mails...): never store those.
    message = redact_text(str(exc), event.payload)[:_MAX_ERROR]
    error = f"{error_class}: {message}" if message else error_class
    stack = redact_text("".join(traceback.format_exception(exc)), event.payload)
    now = clock()
    retry_at = None if replay else policy.decide(event.attempts, now, rng)
    state = EventState.RETRYING if retry_at is not None else EventState.DEAD
    if retry_at is not None:
        held = queue.schedule_retry(conn, event, retry_at, error)
    else:
        held = queue.bury(conn, event, error=error, stack=stack, now=now, replay=replay)
    if not held:
        return Outcome("lost")  # nothing was written: the fenced update matched no row
    queue.record_attempt(
        conn,
        event,
        started=started,
        finished=now,
        outcome=state,
        error_class=error_class,
        error=error,
    )
    return Outcome(state, error_class=error_class, error=error)
