"""Read-only aggregates for the operator reports (`status`, `alerting-check`). No writes here.

Synthetic (smoke-test) events are left out everywhere, like in `/health/webhooks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from timedify.models import ComplianceRequest, EventAttempt, EventState, WebhookEvent

_C, _E, _A = ComplianceRequest, WebhookEvent, EventAttempt
# A compliance webhook not yet turned into a request (queued, failing or dead): its deadline
# runs from receipt.
UNAPPLIED_STATES = (
    EventState.RECEIVED,
    EventState.RETRYING,
    EventState.PROCESSING,
    EventState.DEAD,
)


def compliance_open_and_overdue(conn: Connection, now: datetime) -> tuple[int, int]:
    """Open compliance requests, and how many of them are past their deadline."""
    row = conn.execute(
        select(func.count(), func.count().filter(_C.deadline_at < now)).where(
            _C.completed_at.is_(None)
        )
    ).one()
    return int(row[0]), int(row[1])


def compliance_due_by(conn: Connection, warn_by: datetime, crit_by: datetime) -> tuple[int, int]:
    """Open compliance requests due by `warn_by`, and by `crit_by`."""
    row = conn.execute(
        select(
            func.count().filter(_C.deadline_at <= warn_by),
            func.count().filter(_C.deadline_at <= crit_by),
        ).where(_C.completed_at.is_(None))
    ).one()
    return int(row[0]), int(row[1])


def unapplied_compliance_due_by(
    conn: Connection,
    topics: Iterable[str],
    deadline: timedelta,
    warn_by: datetime,
    crit_by: datetime,
) -> tuple[int, int]:
    """Compliance webhooks not applied yet whose deadline falls by `warn_by`, and by `crit_by`."""
    row = conn.execute(
        select(
            func.count().filter(_E.received_at <= warn_by - deadline),
            func.count().filter(_E.received_at <= crit_by - deadline),
        ).where(
            _E.topic.in_(sorted(topics)),
            _E.state.in_(UNAPPLIED_STATES),
            _E.synthetic.is_(False),
        )
    ).one()
    return int(row[0]), int(row[1])


def processing_seconds(conn: Connection, since: datetime, limit: int) -> list[float]:
    """Received -> processed, for the newest real events processed since `since`."""
    rows = conn.execute(
        select(_E.received_at, _E.processed_at)
        .where(_E.state == EventState.PROCESSED, _E.processed_at >= since, _E.synthetic.is_(False))
        .order_by(_E.processed_at.desc())
        .limit(limit)
    )
    return [(done - received).total_seconds() for received, done in rows if done and received]


def handler_seconds(conn: Connection, since: datetime, limit: int) -> list[float]:
    """Handler run time of the newest attempts finished since `since`."""
    rows = conn.execute(
        select(_A.started_at, _A.finished_at)
        .where(_A.finished_at >= since)
        .order_by(_A.finished_at.desc())
        .limit(limit)
    )
    return [(done - started).total_seconds() for started, done in rows]
