"""The numbers behind `timedify status`: one read-only pass over the database (SPEC O8).

Synthetic events are left out everywhere, like in `/health/webhooks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, select

from timedify.models import ComplianceRequest, EventAttempt, EventState, WebhookEvent
from timedify.store import events

LATENCY_SAMPLE = 10_000


@dataclass
class Overview:
    """What `status` shows."""

    revision: str | None
    heartbeat_age_seconds: float | None
    heartbeat_stale_seconds: float = 60
    activity: dict[str, events.TopicActivity] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    processing_latency: dict[str, float | None] = field(default_factory=dict)
    handler_latency: dict[str, float | None] = field(default_factory=dict)
    compliance_open: int = 0
    compliance_overdue: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "heartbeat_age_seconds": self.heartbeat_age_seconds,
            "topics": {
                topic: {
                    "received_in_window": a.received_in_window,
                    "pending": a.pending,
                    "failures_in_window": a.failures_in_window,
                    "last_received_at": _iso(a.last_received_at),
                    "last_processed_at": _iso(a.last_processed_at),
                    "dead_letters_unresolved": self.dead_letters.get(topic, 0),
                }
                for topic, a in sorted(self.activity.items())
            },
            "dead_letters_unresolved": sum(self.dead_letters.values()),
            "processing_latency_seconds": self.processing_latency,
            "handler_latency_seconds": self.handler_latency,
            "compliance_open": self.compliance_open,
            "compliance_overdue": self.compliance_overdue,
        }


def collect(conn: Connection, window: timedelta, now: datetime) -> Overview:
    """Every figure for the last `window`."""
    since = now - window
    heartbeat = events.latest_heartbeat(conn)
    overview = Overview(
        revision=MigrationContext.configure(conn).get_current_revision(),
        heartbeat_age_seconds=round((now - heartbeat).total_seconds(), 1) if heartbeat else None,
        activity=events.activity_by_topic(conn, since),
        dead_letters=events.dead_letters_by_topic(conn),
    )
    overview.processing_latency = percentiles(_processing_seconds(conn, since))
    overview.handler_latency = percentiles(_handler_seconds(conn, since))
    c = ComplianceRequest
    overview.compliance_open, overview.compliance_overdue = conn.execute(
        select(func.count(), func.count().filter(c.deadline_at < now)).where(
            c.completed_at.is_(None)
        )
    ).one()
    return overview


def _processing_seconds(conn: Connection, since: datetime) -> list[float]:
    """Received -> processed, for the newest real events processed in the window."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.received_at, e.processed_at)
        .where(e.state == EventState.PROCESSED, e.processed_at >= since, e.synthetic.is_(False))
        .order_by(e.processed_at.desc())
        .limit(LATENCY_SAMPLE)
    )
    return [(done - received).total_seconds() for received, done in rows if done and received]


def _handler_seconds(conn: Connection, since: datetime) -> list[float]:
    """Handler run time per attempt finished in the window."""
    a = EventAttempt
    rows = conn.execute(
        select(a.started_at, a.finished_at)
        .where(a.finished_at >= since)
        .order_by(a.finished_at.desc())
        .limit(LATENCY_SAMPLE)
    )
    return [(done - started).total_seconds() for started, done in rows]


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p95 / p99 by the nearest-rank method (None without data)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
        return round(ordered[index], 3)

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "count": len(ordered)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
