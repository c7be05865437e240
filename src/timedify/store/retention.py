"""Retention's statements: counting and deleting old rows in batches (SPEC O5).

The policy and the pacing of the batches live in `timedify.toolkit.retention`; here is what one
batch does to the database. `bulk_session` tunes a SQLite connection for a bulk delete that shares
the file with the service, for the length of a `retention-cleanup` run, on its own connection only:
- `synchronous = NORMAL`: a commit writes the WAL without waiting for fsync, so a batch holds the
  write lock for its work and not for a disk flush. Still atomic and consistent; the next
  service commit (`synchronous = FULL`) syncs these frames with its own. A deletion lost to a
  power cut is only redone by the next run.
- a bigger page cache: consecutive batches touch the same index pages.
- no automatic checkpoint after a commit (it would run inside our timed batch); instead a
  PASSIVE checkpoint at most once a second, timed as work so the pause covers it too. Checkpoints
  a second apart copy each page once however many batches changed it.
Everything is put back as it was when the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, delete, func, select, text, update

from timedify.models import RETENTION_INDEX_WHERE, ComplianceRequest, DeadLetter, UTCDateTime

# The events rule as SQL text, not ORM expressions: the first term must be the partial index's
# predicate word for word (models.RETENTION_INDEX_WHERE), or SQLite will not use the index.
# `synthetic OR NOT EXISTS (...)` together with it is exactly "finished without a dead letter,
# or synthetic".
# Statement texts built from our constants only (bandit B608): every value is bound.
_EVENTS_WHERE = f"""({RETENTION_INDEX_WHERE}) AND received_at < :cutoff
  AND (synthetic OR NOT EXISTS (SELECT 1 FROM dead_letters AS d WHERE d.event_pk = e.id))"""  # nosec B608
COUNT_EVENTS = text(f"SELECT count(*) FROM webhook_events AS e WHERE {_EVENTS_WHERE}")  # nosec B608
# Keyset on (received_at, id), the index's order: rows kept back (an open dead letter, a row
# another transaction holds) are passed once instead of re-read by every batch.
_SELECT_EVENTS = f"SELECT id, received_at FROM webhook_events AS e WHERE {_EVENTS_WHERE}"  # nosec B608
_ORDER = " ORDER BY received_at, id LIMIT :rows"
FIRST_EVENTS = _SELECT_EVENTS + _ORDER
NEXT_EVENTS = _SELECT_EVENTS + " AND (received_at, id) > (:after_at, :after_id)" + _ORDER
# PostgreSQL: a batch is one statement. The batch is locked (no worker or replay changes it
# until the deletes; a row some worker holds, a synthetic event being processed, waits for the
# next run), its children and then its events deleted, and only the walk's new position comes
# back: sending the ids to the client and back three times cost about as much as the deletes
# themselves.
PG_BATCH = """WITH batch AS ({select} FOR UPDATE SKIP LOCKED),
attempts AS (DELETE FROM event_attempts WHERE event_pk IN (SELECT id FROM batch)),
letters AS (DELETE FROM dead_letters WHERE event_pk IN (SELECT id FROM batch)),
gone AS (DELETE FROM webhook_events WHERE id IN (SELECT id FROM batch))
SELECT (SELECT count(*) FROM batch) AS locked, received_at, id FROM batch
ORDER BY received_at DESC, id DESC LIMIT 1"""
# For each batch's transaction. enable_sort: the walk must follow the retention index. Planned
# otherwise - from statistics older than the rows (a bulk import, autovacuum behind), or as the
# generic plan PostgreSQL may settle on once psycopg has prepared the statement (its sixth run) -
# every batch scans and sorts the whole old range, and a big cleanup slows to a crawl. With no
# sort allowed the index is the only ordered path, whatever the statistics and the plan cache
# (an ANALYZE at the start covers only the statistics, and needs the table's ownership). jit: a
# batch's estimated cost passes jit_above_cost, and compiling it costs more than it saves.
PG_SETTINGS = text("SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)")


@dataclass
class Keyset:
    """Where the events rule's walk along the retention index has got to."""

    # The database's own value (SQLite: the stored text), handed back untouched: converting
    # every row's timestamp to a datetime cost more than the rest of the Python per batch.
    received_at: Any = None
    id: int = 0


def count_events(conn: Connection, cutoff: datetime) -> int:
    """Events the events rule would delete now."""
    query = COUNT_EVENTS.bindparams(bindparam("cutoff", cutoff, type_=UTCDateTime()))
    return int(conn.execute(query).scalar_one())


def _old_dead_letters(cutoff: datetime) -> Any:
    return DeadLetter.resolved_at < cutoff


def _old_reports(cutoff: datetime) -> Any:
    c = ComplianceRequest
    return (c.completed_at < cutoff) & c.report.is_not(None)


def count_dead_letters(conn: Connection, cutoff: datetime) -> int:
    """Dead letters resolved before `cutoff`."""
    query = select(func.count()).select_from(DeadLetter).where(_old_dead_letters(cutoff))
    return int(conn.execute(query).scalar_one())


def count_compliance_reports(conn: Connection, cutoff: datetime) -> int:
    """Reports of compliance requests completed before `cutoff`, not cleared yet."""
    query = select(func.count()).select_from(ComplianceRequest).where(_old_reports(cutoff))
    return int(conn.execute(query).scalar_one())


def delete_dead_letters(conn: Connection, cutoff: datetime, rows: int) -> int:
    """Delete up to `rows` dead letters resolved before `cutoff`."""
    d = DeadLetter
    ids = list(
        conn.scalars(select(d.id).where(_old_dead_letters(cutoff)).order_by(d.id).limit(rows))
    )
    if ids:
        conn.execute(delete(d).where(d.id.in_(ids)))
    return len(ids)


def clear_compliance_reports(conn: Connection, cutoff: datetime, rows: int) -> int:
    """Clear up to `rows` reports of requests completed before `cutoff` (the row stays)."""
    c = ComplianceRequest
    ids = list(conn.scalars(select(c.id).where(_old_reports(cutoff)).order_by(c.id).limit(rows)))
    if ids:
        conn.execute(update(c).where(c.id.in_(ids)).values(report=None))
    return len(ids)


def delete_events(conn: Connection, cutoff: datetime, rows: int, keyset: Keyset) -> int:
    """Delete the next `rows` old events along the retention index, children first."""
    first = keyset.received_at is None
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        sql = PG_BATCH.format(select=FIRST_EVENTS if first else NEXT_EVENTS)
    else:
        sql = FIRST_EVENTS if first else NEXT_EVENTS
    query = text(sql).bindparams(bindparam("cutoff", cutoff, type_=UTCDateTime()), rows=rows)
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
    # so it is prepared once. `table` and `column` are our constants, never input.
    return text(f"DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(:ids))")  # nosec B608


# bulk_session's settings.
CACHE_KIB = 64 * 1024
CHECKPOINT_INTERVAL = 1.0
_SETTINGS = {"synchronous": "1", "cache_size": str(-CACHE_KIB), "wal_autocheckpoint": "0"}


@contextmanager
def bulk_session(conn: Connection) -> Iterator[Callable[[], float]]:
    """Tune `conn` for bulk deletes; yields `checkpoint()`, returning the seconds it worked."""
    if conn.dialect.name != "sqlite":
        yield lambda: 0.0
        return
    raw = conn.connection.dbapi_connection
    assert raw is not None  # narrows the type: a connected pysqlite has one  # nosec B101
    before = {name: _pragma(raw, name) for name in _SETTINGS}
    for name, value in _SETTINGS.items():
        raw.execute(f"PRAGMA {name} = {value}")
    last = time.monotonic()

    def checkpoint() -> float:
        nonlocal last
        started = time.monotonic()
        if started - last < CHECKPOINT_INTERVAL:
            return 0.0
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        last = time.monotonic()
        return last - started

    try:
        yield checkpoint
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        for name, value in before.items():
            raw.execute(f"PRAGMA {name} = {value}")


def _pragma(raw: Any, name: str) -> str:
    return str(raw.execute(f"PRAGMA {name}").fetchone()[0])
