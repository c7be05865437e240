"""Dead letters (SPEC P3, O6): list, show, replay through the same handler, clean up.

A replay leases the dead event and runs it through `batch.process` with `replay=True`:
applied, the dead letter is resolved; failed again, it stays dead with its new count and error.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from timedify.errors import TimedifyError
from timedify.logs import get_logger
from timedify.models import utcnow
from timedify.processing import batches
from timedify.processing.handlers import HANDLERS, Handler
from timedify.processing.redaction import load
from timedify.processing.retry import RetryPolicy
from timedify.records import AttemptResult
from timedify.store import claims
from timedify.store import dead_letters as store

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

log = get_logger("timedify.processing.dead_letters")


class DeadLetterNotFound(TimedifyError):
    """No such dead letter, or it cannot be replayed (already resolved, or being processed)."""

    exit_code = 5


@dataclass(frozen=True)
class DeadLetterView:
    """One dead letter as an operator sees it (never the payload itself: it may hold PII)."""

    id: int
    event_pk: int
    webhook_id: str
    topic: str
    shop_domain: str
    error: str
    attempts: int
    replays: int
    first_failed_at: datetime
    last_failed_at: datetime
    resolved_at: datetime | None
    resolution: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DeadLetterDetail(DeadLetterView):
    """`show`: the dead letter with its stack, every attempt, and the payload's shape."""

    stack: str | None = None
    received_at: datetime | None = None
    triggered_at: datetime | None = None
    payload_bytes: int = 0
    payload_keys: list[str] = field(default_factory=list)
    attempt_log: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Filters:
    topic: str | None = None
    shop: str | None = None
    since: datetime | None = None
    include_resolved: bool = False


@dataclass(frozen=True)
class ReplayResult:
    id: int
    topic: str
    state: AttemptResult
    error: str | None

    @property
    def ok(self) -> bool:
        return self.state.finished


def list_dead_letters(conn: Connection, filters: Filters) -> list[DeadLetterView]:
    """Dead letters matching `filters`, oldest failure first."""
    rows = store.matching(
        conn,
        topic=filters.topic,
        shop=filters.shop,
        since=filters.since,
        include_resolved=filters.include_resolved,
    )
    return [DeadLetterView(**row) for row in rows]


def get(conn: Connection, dead_letter_id: int) -> DeadLetterDetail:
    """One dead letter in full; `DeadLetterNotFound` when there is none with that id."""
    row = store.one(conn, dead_letter_id)
    if row is None:
        raise DeadLetterNotFound(f"no dead letter with id {dead_letter_id}")
    attempts = store.attempts(conn, row["event_pk"])
    payload = load(row["payload"])
    view = {column.key: row[column.key] for column in store.VIEW_COLUMNS}
    return DeadLetterDetail(
        **view,
        stack=row["stack"],
        received_at=row["received_at"],
        triggered_at=row["triggered_at"],
        payload_bytes=len(row["payload"]),
        payload_keys=sorted(payload) if isinstance(payload, dict) else [],
        attempt_log=[
            {
                "attempt": n,
                "outcome": outcome,
                "error_class": error_class,
                "error": error,
                "finished_at": finished.isoformat(),
            }
            for n, outcome, error_class, error, finished in attempts
        ],
    )


def replay(
    engine: Engine,
    dead_letter_id: int,
    *,
    lease: timedelta,
    policy: RetryPolicy,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> ReplayResult:
    """Run one dead letter's event through its handler again."""
    with engine.begin() as conn:
        row = store.replay_target(conn, dead_letter_id)
        if row is None:
            raise DeadLetterNotFound(f"no dead letter with id {dead_letter_id}")
        if row.resolved_at is not None:
            raise DeadLetterNotFound(f"dead letter {dead_letter_id} is already resolved")
        event = claims.claim_dead(
            conn, row.event_pk, token=uuid.uuid4().hex, lease=lease, now=utcnow()
        )
    if event is None:
        raise DeadLetterNotFound(f"dead letter {dead_letter_id} is being processed right now")
    outcome = batches.process(engine, event, policy=policy, handlers=handlers, replay=True)
    # One line per replay whoever asked (CLI or console): the weekly report counts these.
    log.info(
        "dead_letter_replayed",
        dead_letter_id=dead_letter_id,
        topic=event.topic,
        shop=event.shop_domain,
        status=outcome.state,
        error_type=outcome.error_class,
    )
    return ReplayResult(dead_letter_id, event.topic, outcome.state, outcome.error)


def replay_all(
    engine: Engine,
    filters: Filters,
    *,
    lease: timedelta,
    policy: RetryPolicy,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> list[ReplayResult]:
    """Replay every unresolved dead letter matching `filters`, one after the other."""
    with engine.connect() as conn:
        ids = [view.id for view in list_dead_letters(conn, filters)]
    results = []
    for dead_letter_id in ids:
        try:
            results.append(
                replay(engine, dead_letter_id, lease=lease, policy=policy, handlers=handlers)
            )
        except DeadLetterNotFound:
            continue  # resolved or taken by someone else meanwhile
    return results


def dismiss(engine: Engine, dead_letter_id: int) -> None:
    """Resolve a dead letter without applying it (an event that can never apply, e.g. a
    malformed payload), so that it stops making `/health` warn. The event stays `dead`."""
    with engine.begin() as conn:
        dismissed = store.dismiss(conn, dead_letter_id, utcnow())
    if not dismissed:
        raise DeadLetterNotFound(f"no unresolved dead letter with id {dead_letter_id}")
    log.info("dead_letter_dismissed", dead_letter_id=dead_letter_id)


def cleanup(engine: Engine, older_than: timedelta, *, batch: int = 500) -> int:
    """Delete resolved dead letters resolved before `older_than` ago, in small transactions."""
    cutoff = utcnow() - older_than
    total = 0
    while True:
        with engine.begin() as conn:
            deleted = store.delete_resolved(conn, cutoff, batch)
        total += deleted
        if deleted < batch:
            return total


def parse_age(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` as a duration."""
    match = _DURATION.match(text)
    if not match:
        raise TimedifyError(f"invalid duration {text!r}: use e.g. 30m, 12h, 7d, 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_since(text: str) -> datetime:
    """A duration ago (`24h`) or an ISO 8601 timestamp (UTC when it names no zone)."""
    if _DURATION.match(text):
        return utcnow() - parse_age(text)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimedifyError(f"invalid --since {text!r}: use e.g. 24h or 2026-01-31T12:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
