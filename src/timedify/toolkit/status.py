"""The numbers behind `timedify status`: one read-only pass over the database (SPEC O8).

Synthetic events are left out everywhere, like in `/health/webhooks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from timedify.store import events, reports, shops

# Latency percentiles are taken over the newest events only: bounded work on a big database.
SAMPLE = 10_000


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
    # Installed shops whose token Shopify refused: they must open the app again (S4).
    needs_reauth: list[str] = field(default_factory=list)

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
            "shops_needing_reauth": self.needs_reauth,
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
    overview.processing_latency = percentiles(reports.processing_seconds(conn, since, SAMPLE))
    overview.handler_latency = percentiles(reports.handler_seconds(conn, since, SAMPLE))
    overview.compliance_open, overview.compliance_overdue = reports.compliance_open_and_overdue(
        conn, now
    )
    overview.needs_reauth = [s.domain for s in shops.needing_reauth(conn)]
    return overview


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
