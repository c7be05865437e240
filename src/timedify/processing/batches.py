"""Apply claimed events exactly once, or record why not (SPEC P2, P3, W3).

Applying one event: hold its row (fenced on the lease token), enter the merchant action in the
exactly-once ledger, run the handler, mark the event and record the attempt — all or nothing. If
the handler fails, that rolls back and the attempt is recorded with a retry or a dead letter.

`process_batch` (the worker) applies several events in one transaction, so the batch shares one
commit: one fsync for many events instead of one each. It runs optimistically: one statement
holds all the batch's rows, another marks them all done and a third records all their
attempts, and no savepoint is taken. If an event fails, the whole transaction rolls back and
the events up to the failing one run again each inside its own savepoint, so the failing event
rolls back alone. `process` (the dead-letter replay) does one event on its own.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from timedify.models import EventState, utcnow
from timedify.processing.handlers import HANDLERS, Handler, Staging
from timedify.processing.redaction import redact_text
from timedify.processing.retry import RetryPolicy
from timedify.processing.staging import Staged
from timedify.records import AttemptResult, ClaimedEvent, Done, Outcome
from timedify.store import claims

DUPLICATE_NOTE = "duplicate: this merchant action (X-Shopify-Event-Id) was already applied"
_MAX_ERROR = 500


class LeaseLost(Exception):
    """Another worker took the event over (our lease expired); we must not write anything."""


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
        return Outcome(AttemptResult.LOST)
    except Exception as exc:
        rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
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
    monotonic: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Process events in one transaction; the outcomes of those processed.

    The transaction takes events from the front of `events` until `max_seconds` have passed (it
    holds SQLite's single write lock meanwhile, and webhook commits wait for that; on PostgreSQL
    it holds the row locks of what it wrote, and another worker writing the same shop's rows
    waits for that), so it may return fewer outcomes than events; the caller passes the rest
    again. It also ends early when `stopping()` says so (a graceful
    stop finishes the event in hand, not the batch). The outcomes hold once this returns (the
    commit happened); if the commit fails, nothing of the batch was written and the exception
    propagates: the events keep their leases, never half-applied.

    The transaction first runs optimistically, without a savepoint per event, and marks the
    events done with one statement for all of them. If an event fails there, all of it rolls
    back and the same events up to the failing one run again one savepoint each, so that the
    failing event rolls back alone and gets its attempt record, retry or dead letter.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
    bound = _Bound(max_seconds, stopping, monotonic)
    failure = _OnFailure(policy, rng, clock)
    try:
        with engine.begin() as conn:
            return _apply_all(conn, events, handlers, failure, bound.start())
    except _Failed as failed:
        upto = events[: failed.upto]
    # Outside the `except`: an error of the rerun must not carry `_Failed` as its context
    # (the stack a dead letter keeps would show this module's signal, not the handler's error).
    return _apply_each(engine, upto, policy, handlers, rng, clock, bound)


@dataclass(frozen=True)
class _Bound:
    """When a batch transaction stops taking events: `seconds` after it began, or stopping."""

    seconds: float
    stopping: Callable[[], bool]
    monotonic: Callable[[], float]

    def start(self) -> Callable[[], bool]:
        """For a transaction beginning now: whether it must stop taking events."""
        deadline = self.monotonic() + self.seconds
        return lambda: self.monotonic() > deadline or self.stopping()


class _Failed(Exception):
    """An event of an optimistic batch failed: redo the first `upto` events one by one."""

    def __init__(self, upto: int) -> None:
        super().__init__(upto)
        self.upto = upto


def _apply_all(
    conn: Connection,
    events: Sequence[ClaimedEvent],
    handlers: Mapping[str, Handler],
    failure: _OnFailure,
    reached: Callable[[], bool],
) -> list[Outcome]:
    clock = failure.clock
    held = claims.hold_all(conn, events)
    mine = [event for event in events if event.id in held and event.topic in handlers]
    entered = claims.record_applied_all(conn, mine, clock())
    data = Staged(conn)
    _read_ahead(data, mine, handlers)
    outcomes: list[Outcome] = []
    done: list[Done] = []
    unapplied: list[ClaimedEvent] = []  # entered in the ledger above, then not applied
    for index, event in enumerate(events):
        if outcomes and reached():
            break
        if event.id not in held:
            outcomes.append(Outcome(AttemptResult.LOST))  # another worker has it now: write nothing
            continue
        started = clock()
        handler = handlers.get(event.topic)
        if handler is None:
            note: str | None = "no handler for this topic"
        elif event.id not in entered:
            note = DUPLICATE_NOTE
        elif isinstance(handler, Staging):
            mark = data.checkpoint()
            try:
                note = handler.staged(data, event, clock())
            except Exception as exc:  # only this event's staged changes are undone
                if _repeated_later(event, events[index + 1 :]):
                    # Its merchant action is delivered again later in the batch: that delivery
                    # must be the one applied, as the per-event path does (the ledger entry
                    # taken up front names this one).
                    raise _Failed(index + 1) from exc
                data.rollback(mark)
                unapplied.append(event)
                outcomes.append(failure.record(conn, event, exc, started))
                continue
        else:
            note = _run_direct(conn, data, event, handler, clock, index)
        state = EventState.PROCESSED if note is None else EventState.IGNORED
        done.append(Done(event, state, note, started, clock()))
        outcomes.append(Outcome(AttemptResult(state), note))
    _flush(data, clock(), len(outcomes))
    unapplied.extend(e for e in events[len(outcomes) :] if e.id in entered)
    claims.forget_applied(conn, unapplied)
    if not claims.finish(conn, done):
        raise _Failed(len(outcomes))  # cannot happen while the rows are held; be sure anyway
    return outcomes


def _repeated_later(event: ClaimedEvent, later: Sequence[ClaimedEvent]) -> bool:
    return any(e.topic == event.topic and e.event_key == event.event_key for e in later)


def _read_ahead(
    data: Staged, events: Sequence[ClaimedEvent], handlers: Mapping[str, Handler]
) -> None:
    """Read what the batch's staged handlers will ask for, with one statement per table."""
    staged = [(e, h) for e in events if isinstance(h := handlers[e.topic], Staging)]
    ids = [i for event, handler in staged for i in handler.subscriptions(event)]
    data.read_ahead({event.shop_domain for event, _ in staged}, ids)


def _run_direct(
    conn: Connection,
    data: Staged,
    event: ClaimedEvent,
    handler: Handler,
    clock: Callable[[], datetime],
    index: int,
) -> str | None:
    """A handler without a staged form, on the connection: it sees what the batch wrote so far,
    and what it writes is read again by the events after it."""
    _flush(data, clock(), index)
    try:
        note = handler(conn, event, clock())
    except Exception as exc:
        raise _Failed(index + 1) from exc
    data.forget()
    return note


def _flush(data: Staged, now: datetime, upto: int) -> None:
    """Write the staged changes. A statement that fails names no event (a value the database
    refuses, say): the events up to here run again one savepoint each, which finds it."""
    try:
        data.flush(now)
    except Exception as exc:
        raise _Failed(upto) from exc


@dataclass(frozen=True)
class _OnFailure:
    """How a failed attempt is recorded: retried later or a dead letter (`_failed`)."""

    policy: RetryPolicy
    rng: random.Random
    clock: Callable[[], datetime]

    def record(
        self, conn: Connection, event: ClaimedEvent, exc: Exception, started: datetime
    ) -> Outcome:
        return _failed(conn, event, exc, self.policy, self.rng, started, self.clock, replay=False)


def _apply_each(
    engine: Engine,
    events: Sequence[ClaimedEvent],
    policy: RetryPolicy,
    handlers: Mapping[str, Handler],
    rng: random.Random,
    clock: Callable[[], datetime],
    bound: _Bound,
) -> list[Outcome]:
    """The events in one transaction, each inside its own savepoint."""
    outcomes: list[Outcome] = []
    reached = bound.start()
    with engine.begin() as conn:
        for event in events:
            if outcomes and reached():
                break
            started = clock()
            savepoint = conn.begin_nested()
            try:
                outcome = _apply(conn, event, handlers, started, clock, replay=False)
                savepoint.commit()
            except LeaseLost:
                savepoint.rollback()
                outcome = Outcome(AttemptResult.LOST)
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
    if not claims.hold(conn, event):
        raise LeaseLost
    note = _run(conn, event, handlers, clock)
    state = EventState.PROCESSED if note is None else EventState.IGNORED
    finished = clock()
    if not claims.finish(conn, [Done(event, state, note, started, finished)]):
        raise LeaseLost
    if replay:
        claims.resolve_dead_letter(conn, event.id, finished, "replayed")
    return Outcome(AttemptResult(state), note)


def _run(
    conn: Connection,
    event: ClaimedEvent,
    handlers: Mapping[str, Handler],
    clock: Callable[[], datetime],
) -> str | None:
    """Apply a held event through its handler, unless it has none or was applied before (W3);
    None when applied, else the note saying why not."""
    handler = handlers.get(event.topic)
    if handler is None:
        return "no handler for this topic"
    if not claims.record_applied(conn, event, clock()):
        return DUPLICATE_NOTE
    return handler(conn, event, clock())


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
    retry_at = None if replay else policy.decide(event.attempts, now, rng, exc)
    state = EventState.RETRYING if retry_at is not None else EventState.DEAD
    if retry_at is not None:
        held = claims.schedule_retry(conn, event, retry_at, error)
    else:
        held = claims.bury(conn, event, error=error, stack=stack, now=now, replay=replay)
    if not held:
        return Outcome(AttemptResult.LOST)  # nothing was written: the fenced update matched no row
    claims.record_attempt(
        conn,
        event,
        started=started,
        finished=now,
        outcome=state,
        error_class=error_class,
        error=error,
    )
    return Outcome(AttemptResult(state), error_class=error_class, error=error)
