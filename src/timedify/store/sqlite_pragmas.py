"""The PRAGMAs and BEGIN Timedify runs on its SQLite connections: durability, waits, checkpoints.

`timedify.db` decides when each applies (every connection, the group committer's own, the
checkpointer thread); the statements themselves are here, with the rest of the SQL.
"""

from __future__ import annotations

from typing import Any


def on_connect(dbapi_conn: Any, busy_timeout_ms: int, read_only: bool) -> None:
    """WAL with `synchronous=FULL` (a commit survives power loss) and a bounded lock wait."""
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if not read_only:
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def begin(conn: Any, *, immediate: bool) -> None:
    """Start a transaction: IMMEDIATE takes the write lock now (and waits for it)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def disable_autocheckpoint(dbapi_conn: Any) -> None:
    """This connection's commits no longer checkpoint the WAL (another thread does)."""
    dbapi_conn.execute("PRAGMA wal_autocheckpoint = 0")


def checkpoint_passive(dbapi_conn: Any) -> None:
    """Copy what it can of the WAL into the database file without blocking any writer."""
    dbapi_conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def take_busy_timeout(dbapi_conn: Any) -> float:
    """Turn SQLite's sleeping busy handler off; return the seconds it would have waited."""
    seconds = float(dbapi_conn.execute("PRAGMA busy_timeout").fetchone()[0]) / 1000
    dbapi_conn.execute("PRAGMA busy_timeout = 0")
    return seconds
