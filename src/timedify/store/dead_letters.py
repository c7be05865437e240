"""Dead-letter queries: the list and one entry for operators, its attempts, dismissal, cleanup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, select, update

from timedify.models import DeadLetter, EventAttempt, WebhookEvent

_D, _E = DeadLetter, WebhookEvent
# What an operator sees of a dead letter; never the payload (it may hold personal data).
VIEW_COLUMNS = (
    _D.id,
    _D.event_pk,
    _E.webhook_id,
    _D.topic,
    _D.shop_domain,
    _D.error,
    _D.attempts,
    _D.replays,
    _D.first_failed_at,
    _D.last_failed_at,
    _D.resolved_at,
    _D.resolution,
)


def matching(
    conn: Connection,
    *,
    topic: str | None,
    shop: str | None,
    since: datetime | None,
    include_resolved: bool,
) -> Sequence[RowMapping]:
    """Dead letters matching the filters, oldest failure first."""
    stmt = select(*VIEW_COLUMNS).join(_E, _E.id == _D.event_pk).order_by(_D.id)
    if not include_resolved:
        stmt = stmt.where(_D.resolved_at.is_(None))
    if topic:
        stmt = stmt.where(_D.topic == topic)
    if shop:
        stmt = stmt.where(_D.shop_domain == shop)
    if since:
        stmt = stmt.where(_D.last_failed_at >= since)
    return conn.execute(stmt).mappings().all()


def one(conn: Connection, dead_letter_id: int) -> RowMapping | None:
    """One dead letter with its stack and its event's times and payload."""
    stmt = (
        select(*VIEW_COLUMNS, _D.stack, _E.received_at, _E.triggered_at, _E.payload)
        .join(_E, _E.id == _D.event_pk)
        .where(_D.id == dead_letter_id)
    )
    return conn.execute(stmt).mappings().first()


def attempts(conn: Connection, event_pk: int) -> Sequence[Any]:
    """Every attempt at an event, in order: (attempt, outcome, error_class, error, finished_at)."""
    a = EventAttempt
    stmt = (
        select(a.attempt, a.outcome, a.error_class, a.error, a.finished_at)
        .where(a.event_pk == event_pk)
        .order_by(a.id)
    )
    return conn.execute(stmt).all()


def replay_target(conn: Connection, dead_letter_id: int) -> Any:
    """The dead letter's event id, topic and resolution time, or None."""
    stmt = select(_D.event_pk, _D.topic, _D.resolved_at).where(_D.id == dead_letter_id)
    return conn.execute(stmt).first()


def dismiss(conn: Connection, dead_letter_id: int, now: datetime) -> bool:
    """Resolve an unresolved dead letter as dismissed; False when there is none to resolve."""
    result = conn.execute(
        update(_D)
        .where(_D.id == dead_letter_id, _D.resolved_at.is_(None))
        .values(resolved_at=now, resolution="dismissed")
    )
    return result.rowcount == 1


def delete_resolved(conn: Connection, before: datetime, limit: int) -> int:
    """Delete up to `limit` dead letters resolved before `before`; how many went."""
    ids = list(
        conn.scalars(
            select(_D.id).where(_D.resolved_at.is_not(None), _D.resolved_at < before).limit(limit)
        )
    )
    if ids:
        conn.execute(delete(_D).where(_D.id.in_(ids)))
    return len(ids)
