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
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, delete, func, select, text, update

from timedify.models import RETENTION_INDEX_WHERE, ComplianceRequest, DeadLetter, UTCDateTime
from timedify.store import retention_sqlite
from timedify.toolkit.pacing import Pacer

RULES = ("dead_letters", "events", "compliance_reports")
POSTGRES_BATCH_SECONDS = 0.2
# The share of the time a cleanup works unless told (`Policy.duty`). SQLite: the service's
# commits need the one write lock between batches. PostgreSQL: row locks never hold an ingest
# commit back, and under ack load, pausing half the time left the acks' p99 where it was (12-13
# ms either way) while it halved the rows deleted per second (docs/benchmarks.md).
DEFAULT_DUTY = {"sqlite": 0.5, "postgresql": 1.0}

# The events rule as SQL text, not ORM expressions: the first term must be the partial index's
# predicate word for word (models.RETENTION_INDEX_WHERE), or SQLite will not use the index.
# `synthetic OR NOT EXISTS (...)` together with it is exactly "finished without a dead letter,
# or synthetic".
_EVENTS_WHERE = f"""({RETENTION_INDEX_WHERE}) AND received_at < :cutoff
  AND (synthetic OR NOT EXISTS (SELECT 1 FROM dead_letters AS d WHERE d.event_pk = e.id))"""
_COUNT_EVENTS = text(f"SELECT count(*) FROM webhook_events AS e WHERE {_EVENTS_WHERE}")
# Keyset on (received_at, id), the index's order: rows kept back (an open dead letter, a row
# another transaction holds) are passed once instead of re-read by every batch.
_SELECT_EVENTS = f"SELECT id, received_at FROM webhook_events AS e WHERE {_EVENTS_WHERE}"
_ORDER = " ORDER BY received_at, id LIMIT :rows"
FIRST_EVENTS = _SELECT_EVENTS + _ORDER
NEXT_EVENTS = _SELECT_EVENTS + " AND (received_at, id) > (:after_at, :after_id)" + _ORDER
# PostgreSQL: a batch is one statement. The batch is locked (no worker or replay changes it
# until the deletes; a row some worker holds, a synthetic event being processed, waits for the
# next run), its children and then its events deleted, and only the walk's new position comes
# back: sending up to 20,000 ids to the client and back three times cost about as much as the
# deletes themselves. With the planner settings below: ~28,000 -> ~73,000 rows/s with `--duty 1`
# and no other load (docs/benchmarks.md).
PG_BATCH = """WITH batch AS ({select} FOR UPDATE SKIP LOCKED),
attempts AS (DELETE FROM event_attempts WHERE event_pk IN (SELECT id FROM batch)),
letters AS (DELETE FROM dead_letters WHERE event_pk IN (SELECT id FROM batch)),
gone AS (DELETE FROM webhook_events WHERE id IN (SELECT id FROM batch))
SELECT (SELECT count(*) FROM batch) AS locked, received_at, id FROM batch
ORDER BY received_at DESC, id DESC LIMIT 1"""
# For each batch's transaction. enable_sort: the walk must follow the retention index. Planned
# otherwise - from statistics older than the rows (a bulk import, autovacuum behind), or as the
# generic plan PostgreSQL may settle on once psycopg has prepared the statement (its sixth run) -
# every batch scans and sorts the whole old range: ~90 ms per batch of 400 rows, and a cleanup
# of 1,000,000 events fell to ~80 rows/s after its first 80,000. With no sort allowed the index
# is the only ordered path, whatever the statistics and the plan cache. (An ANALYZE at the start
# covered only the statistics, for 0.3-0.5 s and with the table's ownership.) jit: a batch's
# estimated cost passes jit_above_cost, and compiling it took longer than a tenth of its work.
PG_SETTINGS = text("SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)")


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
    # An acknowledgement that meets a batch on SQLite waits for it: 2 ms slices kept the ack p99
    # during a cleanup at 8.6-13.8 ms where 5 ms ones gave 12.5-14.6 (docs/benchmarks.md).
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


@dataclass
class _Keyset:
    """Where the events rule's walk along the retention index has got to."""

    # The database's own value (SQLite: the stored text), handed back untouched: converting
    # every row's timestamp to a datetime cost more than the rest of the Python per batch.
    received_at: Any = None
    id: int = 0


def _cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def _dead_letter_filter(policy: Policy, now: datetime) -> Any:
    return DeadLetter.resolved_at < _cutoff(now, policy.dead_letter_days)


def _compliance_filter(policy: Policy, now: datetime) -> Any:
    c = ComplianceRequest
    return (c.completed_at < _cutoff(now, policy.compliance_days)) & c.report.is_not(None)


def plan(conn: Connection, policy: Policy, now: datetime) -> Counts:
    """What a cleanup would touch now (the dry run, and the progress bar's total)."""
    counts = Counts()
    for rule, model, condition in (
        ("dead_letters", DeadLetter, _dead_letter_filter),
        ("compliance_reports", ComplianceRequest, _compliance_filter),
    ):
        query = select(func.count()).select_from(model).where(condition(policy, now))
        counts.values[rule] = int(conn.execute(query).scalar_one())
    cutoff = bindparam("cutoff", _cutoff(now, policy.days), type_=UTCDateTime())
    counts.values["events"] = int(conn.execute(_COUNT_EVENTS.bindparams(cutoff)).scalar_one())
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
    assert policy.duty is not None
    with engine.connect() as conn, retention_sqlite.bulk_session(conn) as checkpoint:
        for rule in RULES:
            pacer = Pacer(_target(conn, policy), policy.duty, policy.batch_size)
            keyset = _Keyset()
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
    conn: Connection, rule: str, policy: Policy, now: datetime, rows: int, keyset: _Keyset
) -> int:
    if rule == "events":
        return _events_batch(conn, policy, now, rows, keyset)
    model, condition = (
        (DeadLetter, _dead_letter_filter)
        if rule == "dead_letters"
        else (ComplianceRequest, _compliance_filter)
    )
    query = select(model.id).where(condition(policy, now)).order_by(model.id).limit(rows)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return 0
    if rule == "compliance_reports":
        conn.execute(update(model).where(model.id.in_(ids)).values(report=None))
    else:
        conn.execute(delete(model).where(model.id.in_(ids)))
    return len(ids)


def _events_batch(
    conn: Connection, policy: Policy, now: datetime, rows: int, keyset: _Keyset
) -> int:
    """Delete the next `rows` old events along the retention index, children first."""
    first = keyset.received_at is None
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        sql = PG_BATCH.format(select=FIRST_EVENTS if first else NEXT_EVENTS)
    else:
        sql = FIRST_EVENTS if first else NEXT_EVENTS
    query = text(sql).bindparams(
        bindparam("cutoff", _cutoff(now, policy.days), type_=UTCDateTime()), rows=rows
    )
    if not first:
        query = query.bindparams(after_at=keyset.received_at, after_id=keyset.id)
    if postgres:
        conn.execute(PG_SETTINGS)
        last = conn.execute(query).one_or_none()
        if last is None:
            return 0
        keyset.received_at, keyset.id = last.received_at, last.id
        return int(last.locked)
    found = conn.execute(query.columns(id=Integer())).all()
    if not found:
        return 0
    ids = "[" + ",".join(str(row.id) for row in found) + "]"
    # Children explicitly, by the batch's ids: one indexed statement per table instead of a
    # cascade lookup per deleted event (dead letters: only synthetic events can still have one).
    for table, column in (("event_attempts", "event_pk"), ("dead_letters", "event_pk")):
        conn.execute(_delete_ids(table, column), {"ids": ids})
    conn.execute(_delete_ids("webhook_events", "id"), {"ids": ids})
    keyset.received_at, keyset.id = found[-1].received_at, found[-1].id
    return len(found)


def _delete_ids(table: str, column: str) -> Any:
    # One statement text whatever the batch size (the ids bound as one JSON array, not n `?`s),
    # so it is prepared once.
    return text(f"DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(:ids))")
