"""The hot INSERT of the ingest path (W3, W4): exactly-once storage, durable when it returns."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Connection

from tests.support.helpers import events
from tests.support.rows import received_row
from timedify.db import WalCheckpointer, make_engine, sqlite_path
from timedify.models import EventState
from timedify.store import events as event_store


def _autocommit(db_url: str) -> Connection:
    return make_engine(db_url).connect().execution_options(isolation_level="AUTOCOMMIT")


def test_new_ids_are_reported_and_durable_at_once(db_url: str) -> None:
    """W4: on the committer's autocommit connection the rows are committed when it returns."""
    conn = _autocommit(db_url)
    try:
        rows = [received_row(f"id-{i}") for i in range(5)]
        assert event_store.insert_events(conn, rows) == {f"id-{i}" for i in range(5)}
        stored = events(db_url)  # another engine, another connection
    finally:
        conn.close()
    assert [e["webhook_id"] for e in stored] == [f"id-{i}" for i in range(5)]
    assert stored[0]["payload"] == b'{"id": 1}'
    assert stored[0]["received_at"] == rows[0]["received_at"]
    assert stored[0]["triggered_at"] == rows[0]["triggered_at"]
    assert stored[0]["synthetic"] is False


def test_every_value_reads_back_as_it_was_given(db_url: str) -> None:
    """The hot INSERT skips SQLAlchemy's execution layer (binary arrays on PostgreSQL, memoised
    timestamp conversion): what the ORM reads back must still be exactly what was stored."""
    offset = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    shared = datetime.now(UTC)
    rows = [
        {
            **received_row("values-1", received_at=shared),
            "event_id": None,
            "triggered_at": offset,
            "payload": b'{"name":"\\u00e9\\"x", "q": "a,b{c}"}',
            "state": EventState.IGNORED,
            "processed_at": offset,
            "synthetic": True,
        },
        {**received_row("values-2", received_at=shared), "triggered_at": None, "attempts": 3},
    ]
    conn = _autocommit(db_url)
    try:
        event_store.insert_events(conn, rows)
    finally:
        conn.close()
    stored = {e["webhook_id"]: e for e in events(db_url)}
    for row in rows:
        for column in event_store.INGEST_COLUMNS:
            assert stored[row["webhook_id"]][column] == row[column], column


def test_ids_stored_before_or_repeated_in_the_batch_are_not_new(db_url: str) -> None:
    """W3: a redelivered id is not stored again; in one batch the first occurrence wins."""
    conn = _autocommit(db_url)
    try:
        first = received_row("seen", datetime.now(UTC) - timedelta(minutes=5))
        assert event_store.insert_events(conn, [first]) == {"seen"}
        batch = [received_row("a"), received_row("seen"), received_row("b"), received_row("a")]
        assert event_store.insert_events(conn, batch) == {"a", "b"}
        stored = {e["webhook_id"]: e for e in events(db_url)}
    finally:
        conn.close()
    assert sorted(stored) == ["a", "b", "seen"]
    assert stored["seen"]["received_at"] == first["received_at"], "the first delivery is kept"
    assert stored["a"]["event_id"] == batch[0]["event_id"]


def test_batches_larger_than_one_statement(db_url: str) -> None:
    """Batches are split into statements of MAX_ROWS_PER_STATEMENT rows; ids stay exact."""
    conn = _autocommit(db_url)
    count = event_store.MAX_ROWS_PER_STATEMENT * 2 + 7
    try:
        rows = [received_row(f"bulk-{i}") for i in range(count)]
        rows.append(received_row("bulk-3"))  # a repeat in a later statement of the same batch
        assert len(event_store.insert_events(conn, rows)) == count
    finally:
        conn.close()
    assert len(events(db_url)) == count


def test_inside_a_caller_transaction_a_rollback_stores_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            assert event_store.insert_events(conn, [received_row("rolled-back")]) == {"rolled-back"}
            transaction.rollback()
    finally:
        engine.dispose()
    assert events(db_url) == []


def _rows_in_database_file(path: Path) -> int:
    """Rows in the main database file alone, ignoring what is still only in the WAL.

    -1 while a checkpoint is writing the file: a reader that ignores the WAL may see it torn.
    """
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0])
    except sqlite3.DatabaseError:
        return -1
    finally:
        conn.close()


def test_the_checkpointer_moves_committed_rows_into_the_database_file(sqlite_url: str) -> None:
    """The committer's connection does not checkpoint; the checkpointer thread does, soon."""
    path = sqlite_path(sqlite_url)
    assert path is not None
    engine = make_engine(sqlite_url)
    checkpointer = WalCheckpointer(engine, interval=0.05)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        WalCheckpointer.take_over(conn.connection.driver_connection)
        event_store.insert_events(conn, [received_row(f"wal-{i}") for i in range(20)])
        assert _rows_in_database_file(path) == 0, "committed to the WAL only"
        checkpointer.committed()
        deadline = time.monotonic() + 10
        while _rows_in_database_file(path) < 20:
            assert time.monotonic() < deadline, "no checkpoint happened"
            time.sleep(0.05)
    finally:
        conn.close()
        checkpointer.stop()
        engine.dispose()
