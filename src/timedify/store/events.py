"""Every SQL statement of the ingest path and the read-only status queries.

Functions take a connection and return plain values; they hold no state. The worker's and the
toolkit's statements live in their own modules under the same rule (`queue`, `deadletters`, ...).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.engine import Dialect

from timedify.models import (
    PENDING_STATES,
    DeadLetter,
    EventAttempt,
    EventState,
    WebhookEvent,
    WorkerHeartbeat,
    webhook_events,
)

# Attempt outcomes that are failures (an ignored duplicate or stale event is not one).
FAILED_OUTCOMES = (EventState.RETRYING, EventState.DEAD)


# The columns a delivery fills; the rest (lease, errors) start NULL.
INGEST_COLUMNS = (
    "webhook_id",
    "topic",
    "shop_domain",
    "event_id",
    "triggered_at",
    "api_version",
    "received_at",
    "payload",
    "state",
    "attempts",
    "next_attempt_at",
    "processed_at",
    "synthetic",
)


class _EventInsert:
    """The hot INSERT of the ingest path, on the raw DBAPI cursor (W3, W4, W5).

    One `INSERT ... ON CONFLICT (webhook_id) DO NOTHING` per batch (multi-row VALUES on SQLite,
    one array per column through `unnest` on PostgreSQL): one statement, one round trip, and on
    a connection in autocommit (the committer's) one commit, whatever the batch size. Values go
    through the columns' own SQLAlchemy bind processors, so they are stored exactly as the ORM
    would store them; only SQLAlchemy's per-execution machinery (cache lookups, execution
    context, result objects) is skipped: it was most of the committer's CPU time.
    """

    def __init__(self, dialect: Dialect) -> None:
        columns = [webhook_events.c[name] for name in INGEST_COLUMNS]
        processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        self._width = len(columns)
        # A row's values in one C call; only the columns with a bind processor (timestamps, the
        # boolean) are converted after that (`_columns`).
        self._values = operator.itemgetter(*INGEST_COLUMNS)
        self._processed = [(i, p) for i, p in enumerate(processors) if p is not None]
        self._received_at = INGEST_COLUMNS.index("received_at")
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._row = "(" + ", ".join([self._mark] * len(columns)) + ")"
        # PostgreSQL names the new ids in the same round trip. pysqlite would step through
        # RETURNING rows one by one, each step giving the GIL back to the event loop and waiting
        # to get it again, so SQLite counts the inserted rows instead (see `__call__`).
        self._returning = dialect.name != "sqlite"
        # Names from our model and constants only (bandit B608); every value is bound.
        table = WebhookEvent.__tablename__
        self._insert = f"INSERT INTO {table} ({', '.join(INGEST_COLUMNS)}) VALUES "  # nosec B608
        self._conflict = " ON CONFLICT (webhook_id) DO NOTHING" + (
            " RETURNING webhook_id" if self._returning else ""
        )
        self._select = f"SELECT webhook_id, received_at FROM {table} WHERE webhook_id IN "  # nosec B608
        self._sql: dict[tuple[bool, int], str] = {}
        # PostgreSQL takes each column as one array: a single statement text for every batch
        # size, which psycopg prepares once, instead of one parse and plan per size. The arrays
        # go in binary (`%b`): psycopg's text array dumper quotes every element with regular
        # expressions, 75 us of the writer thread's time per row against 31 us in binary.
        self._unnest: str | None = None
        if dialect.name == "postgresql":
            arrays = ", ".join(f"%b::{c.type.compile(dialect=dialect)}[]" for c in columns)
            self._unnest = (
                f"INSERT INTO {table} ({', '.join(INGEST_COLUMNS)}) "  # our names  # nosec B608
                f"SELECT * FROM unnest({arrays}){self._conflict}"
            )

    def __call__(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> set[str]:
        fresh: dict[str, dict[str, Any]] = {}
        for row in rows:  # a webhook id repeated in the batch is stored (and new) once
            fresh.setdefault(row["webhook_id"], row)
        if self._unnest is not None:
            cursor.execute(self._unnest, self._columns(fresh.values()))
            return {row[0] for row in cursor.fetchall()}
        values = self._parameters(fresh.values())
        cursor.execute(self._statement(True, len(fresh)), values)
        if self._returning:
            return {row[0] for row in cursor.fetchall()}
        if cursor.rowcount == len(fresh):
            return set(fresh)  # the usual case: nothing was stored before
        # Some ids were stored already. The rows stored now carry this batch's `received_at`
        # (to the microsecond); an earlier delivery of the same id carries its own.
        width = self._width
        ours = {
            webhook_id: values[i * width + self._received_at] for i, webhook_id in enumerate(fresh)
        }
        cursor.execute(self._statement(False, len(ours)), list(ours))
        return {wid for wid, received in cursor.fetchall() if ours[wid] == received}

    def _statement(self, insert: bool, count: int) -> str:
        sql = self._sql.get((insert, count))
        if sql is None:
            if insert:
                sql = self._insert + ", ".join([self._row] * count) + self._conflict
            else:
                sql = self._select + "(" + ", ".join([self._mark] * count) + ")"
            self._sql[(insert, count)] = sql
        return sql

    def _columns(self, rows: Iterable[dict[str, Any]]) -> list[list[Any]]:
        """One list per column, in column order, as the columns' bind processors make them.

        Column-wise and through `map`, so that a value already converted in this batch costs
        no Python code at all: converting a timestamp costs 4-6 us on SQLite (to naive UTC,
        then to text), and the rows of one batch mostly share theirs (one clock reading per
        event-loop iteration, `next_attempt_at` = `received_at`). The writer thread does this
        while holding the GIL the event loop needs.
        """
        columns = [list(column) for column in zip(*map(self._values, rows), strict=True)]
        for i, process in self._processed:
            columns[i] = list(map(_Converted(process).__getitem__, columns[i]))
        return columns

    def _parameters(self, rows: Iterable[dict[str, Any]]) -> list[Any]:
        """Every row's values, one row after the other (the multi-row VALUES)."""
        return list(itertools.chain.from_iterable(zip(*self._columns(rows), strict=True)))


class _Converted(dict[Any, Any]):
    """A bind processor's results by value, computed on first use (`dict.__getitem__` in C)."""

    def __init__(self, process: Callable[[Any], Any]) -> None:
        super().__init__()
        self._process = process

    def __missing__(self, value: Any) -> Any:
        result = self[value] = self._process(value)
        return result


_INSERTS: dict[str, _EventInsert] = {}
# Statements stay far below SQLite's 32,766 and PostgreSQL's 65,535 parameters, and the
# drivers' statement caches hold every size in use (db.py sizes SQLite's).
MAX_ROWS_PER_STATEMENT = 128


def insert_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store deliveries; return the webhook ids that were new (W3).

    Each row has the keys of `INGEST_COLUMNS`. A webhook id already stored (or repeated in
    `rows`) is left as it is and is not in the result. The rows join the caller's transaction,
    or, on a connection in autocommit, each statement of up to `MAX_ROWS_PER_STATEMENT` rows
    commits by itself (W4: durable when this returns).
    """
    if not rows:
        return set()
    insert = _INSERTS.get(conn.dialect.name)
    if insert is None:
        insert = _INSERTS[conn.dialect.name] = _EventInsert(conn.dialect)
    cursor = conn.connection.cursor()
    new: set[str] = set()
    try:
        for start in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
            new |= insert(cursor, rows[start : start + MAX_ROWS_PER_STATEMENT])
    finally:
        cursor.close()
    return new


@dataclass(frozen=True)
class TopicBacklog:
    pending: int
    oldest_received_at: datetime | None


# The status queries are built once: `/health` runs them up to ten times a second under
# polling, and building them again each time was a third of its probe.
_BACKLOG = (
    select(WebhookEvent.topic, func.count(), func.min(WebhookEvent.received_at))
    .where(
        WebhookEvent.state.in_([*PENDING_STATES, EventState.PROCESSING]),
        WebhookEvent.synthetic.is_(False),
    )
    .group_by(WebhookEvent.topic)
)
_DEAD_LETTERS = (
    select(DeadLetter.topic, func.count())
    .where(DeadLetter.resolved_at.is_(None))
    .group_by(DeadLetter.topic)
)
_LATEST_HEARTBEAT = select(func.max(WorkerHeartbeat.last_seen_at)).where(
    WorkerHeartbeat.stopped_at.is_(None)
)


def backlog_by_topic(conn: Connection) -> dict[str, TopicBacklog]:
    """Events waiting for the worker, per topic, with the age of the oldest (synthetic excluded)."""
    rows = conn.execute(_BACKLOG)
    return {topic: TopicBacklog(count, oldest) for topic, count, oldest in rows}


def dead_letters_by_topic(conn: Connection) -> dict[str, int]:
    """Unresolved dead letters per topic."""
    return {str(topic): int(count) for topic, count in conn.execute(_DEAD_LETTERS)}


def latest_heartbeat(conn: Connection) -> datetime | None:
    """When a running worker last reported in (stopped workers do not count)."""
    return conn.execute(_LATEST_HEARTBEAT).scalar()


@dataclass(frozen=True)
class TopicActivity:
    """Per-topic activity for `/health/webhooks` (H2)."""

    last_received_at: datetime | None = None
    last_processed_at: datetime | None = None
    pending: int = 0
    oldest_pending_at: datetime | None = None
    received_in_window: int = 0
    failures_in_window: int = 0
    dead_letters_in_window: int = 0


def activity_by_topic(conn: Connection, since: datetime) -> dict[str, TopicActivity]:
    """Received / processed / pending / failures / dead letters per topic since `since`.

    Every figure is read along an index, per topic (the topics found by a skip scan of the
    topic index), so the cost follows the window and the number of topics, not the size of
    the table: a single GROUP BY over the events read all of them (seconds on a million).
    """
    e, a, d = WebhookEvent, EventAttempt, DeadLetter
    real = e.synthetic.is_(False)
    stats: dict[str, dict[str, Any]] = {}
    for topic in _topics(conn):
        last_rx = conn.execute(
            select(e.received_at)
            .where(e.topic == topic, real)
            .order_by(e.received_at.desc(), e.id.desc())
            .limit(1)
        ).scalar()
        if last_rx is None:
            continue  # only synthetic events
        last_done = conn.execute(
            select(e.processed_at)
            .where(e.topic == topic, e.processed_at.is_not(None), real)
            .order_by(e.processed_at.desc())
            .limit(1)
        ).scalar()
        in_window = conn.execute(
            select(func.count()).where(e.topic == topic, e.received_at >= since, real)
        ).scalar_one()
        stats[topic] = {
            "last_received_at": last_rx,
            "last_processed_at": last_done,
            "received_in_window": in_window,
        }
    for topic, backlog in backlog_by_topic(conn).items():
        stats.setdefault(topic, {}).update(
            pending=backlog.pending, oldest_pending_at=backlog.oldest_received_at
        )
    for topic, failures in conn.execute(
        select(e.topic, func.count())
        .join(a, a.event_pk == e.id)
        .where(and_(a.outcome.in_(FAILED_OUTCOMES), a.finished_at >= since, real))
        .group_by(e.topic)
    ):
        stats.setdefault(topic, {})["failures_in_window"] = failures
    for topic, dead in conn.execute(
        select(d.topic, func.count()).where(d.last_failed_at >= since).group_by(d.topic)
    ):
        stats.setdefault(topic, {})["dead_letters_in_window"] = dead
    return {topic: TopicActivity(**values) for topic, values in stats.items()}


def _topics(conn: Connection) -> list[str]:
    """Every topic stored, one index seek each (a loose index scan, on both databases)."""
    e = WebhookEvent
    first = select(func.min(e.topic).label("topic")).cte("topics", recursive=True)
    step = select(select(func.min(e.topic)).where(e.topic > first.c.topic).scalar_subquery()).where(
        first.c.topic.is_not(None)
    )
    topics = first.union_all(step)
    return [t for t in conn.execute(select(topics.c.topic)).scalars() if t is not None]
