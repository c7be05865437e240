"""Engines for the two supported databases, set up for durability and bounded waits.

SQLite: WAL with `synchronous=FULL`, so a commit survives power loss, and a busy timeout so a
locked file turns into an error within a bound instead of a hang (W4). PostgreSQL: psycopg 3 with
connect and statement timeouts for the same reason.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from timedify.errors import DatabaseUnavailableError
from timedify.settings import Settings
from timedify.store import sqlite_pragmas

_FILE_IDENTITY = "timedify_file_identity"


def make_engine(
    url: str,
    *,
    busy_timeout_ms: int = 2000,
    connect_timeout_s: int = 2,
    statement_timeout_ms: int | None = None,
    read_only: bool = False,
    pool_size: int = 5,
) -> Engine:
    """An engine for `url`. `read_only` connections cannot write (used by `/health`)."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms, read_only=read_only)
    options = []
    if statement_timeout_ms is not None:
        options.append(f"-c statement_timeout={statement_timeout_ms}")
        options.append(f"-c lock_timeout={statement_timeout_ms}")
    if read_only:
        options.append("-c default_transaction_read_only=on")
    connect_args: dict[str, Any] = {
        "connect_timeout": connect_timeout_s,
        # A server that stops answering mid-connection is detected instead of waited on forever.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": max(connect_timeout_s, 5) * 1000,
        "application_name": "timedify",
    }
    if options:
        connect_args["options"] = " ".join(options)
    return create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout_s,
        hide_parameters=True,
    )


def engine_for(settings: Settings, **kwargs: Any) -> Engine:
    """The engine for the configured database with the configured bounds."""
    kwargs.setdefault("busy_timeout_ms", settings.db_busy_timeout_ms)
    kwargs.setdefault("connect_timeout_s", settings.db_connect_timeout_seconds)
    return make_engine(settings.database_url, **kwargs)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _sqlite_engine(url: str, *, busy_timeout_ms: int, read_only: bool) -> Engine:
    path = sqlite_path(url)
    if path is None:
        raise ValueError("an in-memory SQLite database cannot be shared: give DATABASE_URL a file")
    if read_only:
        engine = create_engine(
            f"sqlite:///file:{path.as_posix()}?mode=ro&uri=true",
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
            hide_parameters=True,
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "timeout": busy_timeout_ms / 1000,
                "check_same_thread": False,
                # The ingest INSERT and its duplicate check are prepared once per batch size
                # (store.MAX_ROWS_PER_STATEMENT of each); the default cache of 128 would churn.
                "cached_statements": 512,
            },
            hide_parameters=True,
        )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None
        sqlite_pragmas.on_connect(dbapi_conn, busy_timeout_ms, read_only)
        record.info[_FILE_IDENTITY] = file_identity(path)

    _watch_file(engine, path)

    # pysqlite's implicit BEGIN is deferred, and a deferred reader that later writes fails with
    # SQLITE_BUSY at once instead of waiting; writers take the lock up front and wait instead.
    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        sqlite_pragmas.begin(conn, immediate=not read_only)

    return engine


class DatabaseFileReplacedError(DatabaseUnavailableError):
    """The SQLite file at the configured path is missing, or not the one a connection has open."""


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def ensure_same_file(conn: Connection, path: Path) -> None:
    """Raise unless `conn` has open the very file now at `path` (W4: stored means stored there).

    A file deleted or replaced under a running process stays open, and writable, through every
    connection made before: a commit into it succeeds and is lost with the last of them.
    """
    now = file_identity(path)
    if now is None:
        raise DatabaseFileReplacedError("the SQLite database file is missing")
    if conn.info.get(_FILE_IDENTITY) != now:
        raise DatabaseFileReplacedError("the SQLite database file was replaced")


def _watch_file(engine: Engine, path: Path) -> None:
    """Connections to a file that is no longer at `path` are never handed out again, and once
    the engine has opened the file it never creates an empty one in its place (only
    `timedify migrate` or a restore puts a database back)."""
    seen = threading.Event()

    @event.listens_for(engine, "do_connect")
    def _refuse_missing(*_args: Any) -> None:
        if seen.is_set() and file_identity(path) is None:
            raise DatabaseFileReplacedError("the SQLite database file is missing")

    @event.listens_for(engine, "checkout")
    def _same_file(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        seen.set()
        now = file_identity(path)
        if now is None:
            raise DatabaseFileReplacedError("the SQLite database file is missing")
        if record.info.get(_FILE_IDENTITY) != now:
            # The pool closes this connection and opens a new one, to the file there now.
            raise exc.DisconnectionError("the SQLite database file was replaced")


class WalCheckpointer:
    """Checkpoints a SQLite WAL from its own thread, off the writer's commit path.

    SQLite checkpoints automatically from the connection whose commit fills the WAL past 1,000
    pages: that commit then also copies the WAL into the database file and syncs it, tens of
    milliseconds during which every acknowledgement of the batch waits (the p99 of the ack
    benchmark). The group committer turns that off on its own connection and asks this thread
    for a PASSIVE checkpoint at most every `interval` seconds while it commits; a passive
    checkpoint never blocks writers, and the WAL stays as bounded as before.
    """

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="timedify-checkpoint", daemon=True)
        self._thread.start()

    @staticmethod
    def take_over(dbapi_connection: Any) -> None:
        """Stop `dbapi_connection` from checkpointing by itself (this thread does it)."""
        sqlite_pragmas.disable_autocheckpoint(dbapi_connection)

    def committed(self) -> None:
        """A commit happened: a checkpoint is due within `interval` seconds."""
        self._due.set()

    def stop(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stopping:
            self._due.wait()
            if self._stopping:
                break
            self._due.clear()
            self._checkpoint()
            time.sleep(self._interval)
        self._checkpoint()

    def _checkpoint(self) -> None:
        # The raw connection is in autocommit: no BEGIN IMMEDIATE, so no writer waits for it.
        try:
            raw = self._engine.raw_connection()
            try:
                sqlite_pragmas.checkpoint_passive(raw)
            finally:
                raw.close()
        except Exception:  # noqa: S110 - the next commit asks again; writes do not depend on it  # nosec B110
            pass
