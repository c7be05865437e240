"""The operator console's own read queries (SPEC C2, C3, C5): events, one event, the chart.

Everything the console shows that a CLI command or `/health` already reads comes from their
functions (`store.events`, `processing.dead_letters`); only what no command reads lives here.
Lists use keyset pagination on `(received_at, id)`, newest first, along the indexes of
migration 0007, so a page costs the same on the first and the thousandth page of a million
events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    cast,
    func,
    literal,
    select,
    text,
    tuple_,
)

from timedify.ingest.webhooks import COMPLIANCE_TOPICS
from timedify.models import (
    RARE_STATES,
    RARE_STATES_WHERE,
    ComplianceRequest,
    DeadLetter,
    EventAttempt,
    EventState,
    UTCDateTime,
    WebhookEvent,
)
from timedify.store.events import FAILED_OUTCOMES
from timedify.store.reports import UNAPPLIED_STATES

_E, _A = WebhookEvent, EventAttempt


@dataclass(frozen=True)
class EventFilters:
    """The events page's query parameters (C3); None is "any"."""

    topic: str | None = None
    shop: str | None = None
    state: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class EventRow:
    """One line of the events list."""

    id: int
    webhook_id: str
    topic: str
    shop_domain: str
    state: str
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    synthetic: bool

    @property
    def cursor(self) -> tuple[datetime, int]:
        """Where the next page starts (exclusive)."""
        return self.received_at, self.id


_ROW = (
    _E.id,
    _E.webhook_id,
    _E.topic,
    _E.shop_domain,
    _E.state,
    _E.attempts,
    _E.received_at,
    _E.processed_at,
    _E.synthetic,
)


def list_events(
    conn: Connection,
    filters: EventFilters,
    *,
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> list[EventRow]:
    """Up to `limit` events matching `filters`, newest first, strictly older than `before`."""
    stmt = list_events_statement(filters, before=before, limit=limit)
    return [EventRow(**row._mapping) for row in conn.execute(stmt)]


def list_events_statement(
    filters: EventFilters, *, before: tuple[datetime, int] | None, limit: int
) -> Select[*tuple[Any, ...]]:
    """The query of `list_events` (its plan is tested)."""
    stmt = select(*_ROW).order_by(_E.received_at.desc(), _E.id.desc()).limit(limit)
    terms = [(_E.shop_domain, filters.shop), (_E.topic, filters.topic), (_E.state, filters.state)]
    if filters.state in RARE_STATES:
        terms.insert(1, terms.pop())
    chosen = next((column for column, value in terms if value), None)
    if chosen is _E.state and filters.state not in RARE_STATES:
        chosen = None  # a common state: along (received_at, id), not the claim index
    for column, value in terms:
        if value:
            # Only the most selective filter (shop, a rare state, topic) may pick the index;
            # the others are checked on its rows (`|| ''` hides them from the planner, which
            # has no statistics on SQLite and would take the topic's index for topic + shop).
            stmt = stmt.where((column if column is chosen else column.concat("")) == value)
    if chosen is _E.state:
        stmt = stmt.where(text(RARE_STATES_WHERE))  # lets SQLite use the partial index
    if filters.since is not None:
        stmt = stmt.where(_E.received_at >= filters.since)
    if before is not None:
        at, event_pk = before
        stmt = stmt.where(
            tuple_(_E.received_at, _E.id) < tuple_(literal(at, UTCDateTime()), literal(event_pk))
        )
    return stmt


@dataclass(frozen=True)
class EventDetail:
    """One event as stored: the headers kept, its state, every attempt, the raw payload.

    The payload is for the web layer to measure and mask; it is never shown as it is.
    """

    row: EventRow
    event_id: str | None
    triggered_at: datetime | None
    api_version: str | None
    next_attempt_at: datetime
    last_error: str | None
    note: str | None
    payload: bytes
    dead_letter_id: int | None
    attempt_log: list[dict[str, Any]] = field(default_factory=list)


def get_event(conn: Connection, event_pk: int) -> EventDetail | None:
    """The event with that id and its attempts, oldest first; None when there is none."""
    row = conn.execute(
        select(
            *_ROW,
            _E.event_id,
            _E.triggered_at,
            _E.api_version,
            _E.next_attempt_at,
            _E.last_error,
            _E.note,
            _E.payload,
            DeadLetter.id.label("dead_letter_id"),
        )
        .outerjoin(DeadLetter, DeadLetter.event_pk == _E.id)
        .where(_E.id == event_pk)
    ).first()
    if row is None:
        return None
    values = row._mapping
    attempts = conn.execute(
        select(_A.attempt, _A.started_at, _A.finished_at, _A.outcome, _A.error_class, _A.error)
        .where(_A.event_pk == event_pk)
        .order_by(_A.id)
    )
    return EventDetail(
        row=EventRow(**{c.key: values[c.key] for c in _ROW}),
        event_id=values["event_id"],
        triggered_at=values["triggered_at"],
        api_version=values["api_version"],
        next_attempt_at=values["next_attempt_at"],
        last_error=values["last_error"],
        note=values["note"],
        payload=values["payload"],
        dead_letter_id=values["dead_letter_id"],
        attempt_log=[dict(a._mapping) for a in attempts],
    )


def activity_series(
    conn: Connection, since: datetime, bucket_seconds: int = 300
) -> dict[str, dict[int, int]]:
    """Received events, processed and failed attempts per bucket since `since` (C2's chart).

    Keys are the buckets' starts in Unix seconds; empty buckets are absent. Synthetic events
    are left out, as in `/health/webhooks`. Each count walks an index over the window only.
    """
    received = _bucket(conn, _E.received_at, bucket_seconds)
    series: dict[str, dict[int, int]] = {"received": {}, "processed": {}, "failed": {}}
    stmt = (
        select(received, func.count())
        .where(_E.received_at >= since, _E.synthetic.is_(False))
        .group_by(received)
    )
    series["received"] = {int(b) * bucket_seconds: int(n) for b, n in conn.execute(stmt)}
    finished = _bucket(conn, _A.finished_at, bucket_seconds)
    failed = _A.outcome.in_(FAILED_OUTCOMES)
    stmt = (
        select(
            finished,
            func.count().filter(_A.outcome == EventState.PROCESSED),
            func.count().filter(failed),
        )
        .join(_E, _E.id == _A.event_pk)
        .where(_A.finished_at >= since, _E.synthetic.is_(False))
        .group_by(finished)
    )
    for bucket, processed, failures in conn.execute(stmt):
        start = int(bucket) * bucket_seconds
        if processed:
            series["processed"][start] = int(processed)
        if failures:
            series["failed"][start] = int(failures)
    return series


def _bucket(conn: Connection, column: Any, seconds: int) -> ColumnElement[Any]:
    """The column's Unix time divided by `seconds` (timestamps are stored as naive UTC)."""
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer) // seconds  # integer division
    return cast(func.floor(func.extract("epoch", column) / seconds), Integer)


@dataclass(frozen=True)
class ComplianceItem:
    """A compliance request (recorded by its handler, with its evidence) or a compliance
    webhook not applied yet (no evidence: the deadline runs from receipt)."""

    kind: str
    shop_domain: str
    received_at: datetime
    deadline_at: datetime
    status: str
    completed_at: datetime | None
    evidence: str | None
    customer_ref: str | None
    event_pk: int | None


def compliance_requests(conn: Connection, limit: int = 200) -> list[ComplianceItem]:
    """The newest recorded compliance requests, nearest deadline first."""
    c = ComplianceRequest
    rows = conn.execute(
        select(
            c.kind,
            c.shop_domain,
            c.received_at,
            c.deadline_at,
            c.status,
            c.completed_at,
            c.report.label("evidence"),
            c.customer_ref,
            c.event_pk,
        )
        .order_by(c.deadline_at.desc(), c.id.desc())
        .limit(limit)
    )
    return sorted(
        (ComplianceItem(**row._mapping) for row in rows), key=lambda item: item.deadline_at
    )


def unapplied_compliance(
    conn: Connection, deadline: timedelta, limit: int = 200
) -> list[ComplianceItem]:
    """Compliance webhooks still waiting for the worker or dead, oldest (most urgent) first."""
    rows = conn.execute(
        select(_E.topic, _E.shop_domain, _E.received_at, _E.state, _E.id)
        .where(
            _E.topic.in_(sorted(COMPLIANCE_TOPICS)),
            _E.state.in_(UNAPPLIED_STATES),
            _E.synthetic.is_(False),
        )
        .order_by(_E.received_at, _E.id)
        .limit(limit)
    )
    return [
        ComplianceItem(
            kind=topic,
            shop_domain=shop,
            received_at=received,
            deadline_at=received + deadline,
            status=f"not applied ({state})",
            completed_at=None,
            evidence=None,
            customer_ref=None,
            event_pk=pk,
        )
        for topic, shop, received, state, pk in rows
    ]
