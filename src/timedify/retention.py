"""Retention: old processed events, old resolved dead letters, old compliance reports (SPEC O5).

Every rule deletes (or clears) in batches of bounded size, each batch its own short transaction,
with a short pause between batches: on SQLite the write lock is held for milliseconds at a time,
so the service's group committer keeps acknowledging webhooks while a cleanup of millions of
rows runs.

The policy (docs/operations.md):
- `events`: webhook events that are finished (`processed`, `ignored`, or `dead` with no dead
  letter left) and were received more than `days` ago, with their attempts. Events that still
  have a dead letter wait for it. Synthetic events (smoke test leftovers) go after `days` in any
  state. The exactly-once ledger (`applied_events`) is kept: it holds no payload and stops an
  old redelivery from being applied twice.
- `dead_letters`: dead letters resolved more than `dead_letter_days` ago. Unresolved ones are
  never deleted.
- `compliance_reports`: the `report` of compliance requests completed more than
  `compliance_days` ago is cleared; the request row (kind, shop, dates, status) stays as proof
  the request was handled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, func, or_, select, update

from timedify.models import ComplianceRequest, DeadLetter, EventState, WebhookEvent

FINISHED_STATES = (EventState.PROCESSED, EventState.IGNORED, EventState.DEAD)
RULES = ("dead_letters", "events", "compliance_reports")


@dataclass(frozen=True)
class Policy:
    """How old is too old, and how big a batch may be."""

    days: int
    dead_letter_days: int = 30
    compliance_days: int = 30
    batch_size: int = 1000
    pause_seconds: float = 0.01


@dataclass
class Counts:
    """Rows deleted (or, for compliance reports, cleared) per rule."""

    values: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    @property
    def total(self) -> int:
        return sum(self.values.values())


def _event_filter(policy: Policy, now: datetime) -> Any:
    e = WebhookEvent
    cutoff = now - timedelta(days=policy.days)
    no_dead_letter = ~exists().where(DeadLetter.event_pk == e.id)
    finished = e.state.in_(FINISHED_STATES) & no_dead_letter
    return (e.received_at < cutoff) & or_(finished, e.synthetic.is_(True))


def _dead_letter_filter(policy: Policy, now: datetime) -> Any:
    return DeadLetter.resolved_at < now - timedelta(days=policy.dead_letter_days)


def _compliance_filter(policy: Policy, now: datetime) -> Any:
    c = ComplianceRequest
    return (c.completed_at < now - timedelta(days=policy.compliance_days)) & c.report.is_not(None)


_TABLES: dict[str, tuple[Any, Callable[[Policy, datetime], Any]]] = {
    "dead_letters": (DeadLetter, _dead_letter_filter),
    "events": (WebhookEvent, _event_filter),
    "compliance_reports": (ComplianceRequest, _compliance_filter),
}


def plan(conn: Connection, policy: Policy, now: datetime) -> Counts:
    """What a cleanup would touch now (the dry run, and the progress bar's total)."""
    counts = Counts()
    for rule, (model, condition) in _TABLES.items():
        counts.values[rule] = int(
            conn.execute(
                select(func.count()).select_from(model).where(condition(policy, now))
            ).scalar_one()
        )
    return counts


def run(
    engine: Engine,
    policy: Policy,
    now: datetime,
    on_batch: Callable[[str, int], None] = lambda rule, done: None,
) -> Counts:
    """Apply every rule in bounded batches; `on_batch(rule, rows)` after each commit."""
    counts = Counts()
    for rule in RULES:
        while True:
            with engine.begin() as conn:
                done = _batch(conn, rule, policy, now)
            counts.values[rule] += done
            if done:
                on_batch(rule, done)
            if done < policy.batch_size:
                break
            # Lets a waiting writer (the ingest committer) take the lock between batches.
            time.sleep(policy.pause_seconds)
    return counts


def _batch(conn: Connection, rule: str, policy: Policy, now: datetime) -> int:
    model, condition = _TABLES[rule]
    ids = list(
        conn.execute(
            select(model.id)
            .where(condition(policy, now))
            .order_by(model.id)
            .limit(policy.batch_size)
        ).scalars()
    )
    if not ids:
        return 0
    if rule == "compliance_reports":
        conn.execute(update(model).where(model.id.in_(ids)).values(report=None))
    else:
        conn.execute(delete(model).where(model.id.in_(ids)))
    return len(ids)
