"""Retention: old processed events, old resolved dead letters, old compliance reports (SPEC O5).

Every rule deletes (or clears) in time-sliced batches (`timedify.toolkit.pacing`): each batch is its
own short transaction, sized so it holds the write lock a few milliseconds, and on SQLite
followed by a pause proportional to its work (`DEFAULT_DUTY`), so the service's group committer
keeps acknowledging webhooks while a cleanup of millions of rows runs.

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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from timedify.store import retention as store
from timedify.toolkit.pacing import Pacer

RULES = ("dead_letters", "events", "compliance_reports")
POSTGRES_BATCH_SECONDS = 0.2
# The share of the time a cleanup works unless told (`Policy.duty`). SQLite: the service's
# commits need the one write lock between batches. PostgreSQL: row locks never hold an ingest
# commit back, so pausing only slows the cleanup.
DEFAULT_DUTY = {"sqlite": 0.5, "postgresql": 1.0}


@dataclass(frozen=True)
class Policy:
    """How old is too old, and how hard a cleanup may press on the database.

    `batch_size` caps the rows of one transaction; within it the size follows `batch_seconds`,
    the time one transaction may hold the write lock. `duty` is the share of the wall clock the
    cleanup works; it pauses the rest. None leaves it to the database (`for_database`).
    """

    days: int
    dead_letter_days: int = 30
    compliance_days: int = 30
    batch_size: int = 20_000
    # An acknowledgement that meets a batch on SQLite waits for it: short slices keep the ack
    # p99 low during a cleanup.
    batch_seconds: float = 0.002
    duty: float | None = None

    def for_database(self, dialect: str) -> Policy:
        """This policy with the database's `DEFAULT_DUTY` where it left the duty open."""
        return self if self.duty is not None else replace(self, duty=DEFAULT_DUTY[dialect])


@dataclass
class Counts:
    """Rows deleted (or, for compliance reports, cleared) per rule."""

    values: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    @property
    def total(self) -> int:
        return sum(self.values.values())


def _cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def plan(conn: Connection, policy: Policy, now: datetime) -> Counts:
    """What a cleanup would touch now (the dry run, and the progress bar's total)."""
    counts = Counts()
    counts.values["dead_letters"] = store.count_dead_letters(
        conn, _cutoff(now, policy.dead_letter_days)
    )
    counts.values["compliance_reports"] = store.count_compliance_reports(
        conn, _cutoff(now, policy.compliance_days)
    )
    counts.values["events"] = store.count_events(conn, _cutoff(now, policy.days))
    return counts


def run(
    engine: Engine,
    policy: Policy,
    now: datetime,
    on_batch: Callable[[str, int], None] = lambda rule, done: None,
) -> Counts:
    """Apply every rule in time-sliced batches; `on_batch(rule, rows)` after each commit."""
    counts = Counts()
    policy = policy.for_database(engine.dialect.name)
    assert policy.duty is not None  # narrows the type: for_database sets it  # nosec B101
    with engine.connect() as conn, store.bulk_session(conn) as checkpoint:
        for rule in RULES:
            pacer = Pacer(_target(conn, policy), policy.duty, policy.batch_size)
            keyset = store.Keyset()
            while True:
                rows = pacer.rows
                with conn.begin():
                    # Timed from when the write lock is ours: waiting for it is not holding it.
                    started = time.perf_counter()
                    done = _batch(conn, rule, policy, now, rows, keyset)
                held = time.perf_counter() - started
                counts.values[rule] += done
                if done:
                    on_batch(rule, done)
                if done < rows:
                    break
                pacer.finished(done, held, checkpoint())
    return counts


def _target(conn: Connection, policy: Policy) -> float:
    # PostgreSQL's row locks let the ingest commit while a batch runs, so there a batch only
    # has to keep its transaction short; and its commit alone (an fsync) can take longer than
    # SQLite's lock budget, which would pin every batch at the minimum size.
    if conn.dialect.name == "postgresql":
        return max(policy.batch_seconds, POSTGRES_BATCH_SECONDS)
    return policy.batch_seconds


def _batch(
    conn: Connection, rule: str, policy: Policy, now: datetime, rows: int, keyset: store.Keyset
) -> int:
    if rule == "events":
        return store.delete_events(conn, _cutoff(now, policy.days), rows, keyset)
    if rule == "dead_letters":
        return store.delete_dead_letters(conn, _cutoff(now, policy.dead_letter_days), rows)
    return store.clear_compliance_reports(conn, _cutoff(now, policy.compliance_days), rows)
