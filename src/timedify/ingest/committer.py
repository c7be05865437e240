"""Group commit: concurrent webhook acknowledgements share one durable transaction (W4, W5).

Request handlers put their row on a queue and await a future. A writer thread takes whatever is
queued (up to a batch size), inserts it in one transaction, commits, and resolves every future of
the batch with one loop callback. Each response still waits for its own commit; under load
one fsync pays for many webhooks instead of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from timedify.db import DatabaseFileReplacedError, WalCheckpointer, ensure_same_file, sqlite_path
from timedify.errors import DatabaseUnavailableError, describe
from timedify.logs import RepeatedLines, get_logger, identifier
from timedify.store import events, sqlite_pragmas

_STOP = object()
log = get_logger("timedify.ingest.endpoint")
# A failing database fails every batch: one line per 10 s, with the count (`occurrences`).
FAILURE_LOG_INTERVAL_SECONDS = 10.0
# How long after webhooks queued behind a commit a burst still counts as on (`in_burst`):
# senders that wait for their answers come in waves, with a commit's few milliseconds between.
BURST_SECONDS = 0.1


@dataclass(slots=True)
class _Handover:
    """The rows one event loop submitted during one iteration, handed to the thread at once."""

    loop: asyncio.AbstractEventLoop
    rows: list[dict[str, Any]] = field(default_factory=list)
    futures: list[asyncio.Future[bool]] = field(default_factory=list)


@dataclass
class CommitState:
    """What `/health` needs to know about the write path, without touching the database."""

    last_success: float | None = None
    last_failure: float | None = None
    last_error_class: str | None = None
    consecutive_failures: int = 0
    queued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


class QueueFullError(DatabaseUnavailableError):
    """More webhooks are waiting for the database than the configured bound."""


class GroupCommitter:
    """Writer threads that commit queued webhook rows in batches.

    SQLite has one writer (it allows one write transaction at a time). On PostgreSQL several
    writers, each with its own connection, take turns from the same queue: while one waits for
    its commit's flush, the next batch is already on its way, so a webhook waits for about one
    commit instead of the rest of the one in flight plus its own.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        writers: int = 1,
        max_batch: int = 512,
        max_queue: int = 10_000,
        on_commit: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._on_commit = on_commit
        self._checkpointer: WalCheckpointer | None = None
        self._writers = [_Writer(self) for _ in range(1 if _is_sqlite(engine) else writers)]
        # SQLite: the file a commit must have gone into for its webhooks to be acknowledged.
        self.sqlite_file = sqlite_path(engine.url.render_as_string(hide_password=False))
        self._open: dict[asyncio.AbstractEventLoop, _Handover] = {}
        self._failures = RepeatedLines(log, FAILURE_LOG_INTERVAL_SECONDS)
        self._submitted = 0
        self._settled = 0  # the writers' settled counts as last summed by `submit`
        self._queued_behind_at = float("-inf")  # when rows last met a commit in flight
        self.state = CommitState()

    def start(self) -> None:
        if _is_sqlite(self._engine):
            self._checkpointer = WalCheckpointer(self._engine)
        for number, writer in enumerate(self._writers):
            thread = threading.Thread(
                target=writer.run, name=f"timedify-committer-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the threads."""
        if not self._threads:
            return
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    def submit(self, row: dict[str, Any]) -> asyncio.Future[bool]:
        """Queue `row`; the future resolves to True (new) / False (duplicate) once committed.

        Rows are handed to the writer threads once per event-loop iteration, not one by one:
        every hand-over can wake a thread and make it take the GIL from the loop.
        """
        if self._submitted - self._settled >= self._max_queue:
            # `_settled` only lags behind the writers' counts (they only grow): look again
            # before refusing, and only then, instead of summing them for every request.
            self._settled = sum(writer.settled for writer in self._writers)
            if self._submitted - self._settled >= self._max_queue:
                raise QueueFullError("ingest queue is full: the database is not keeping up")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        handover = self._open.get(loop)
        if handover is None:
            handover = self._open[loop] = _Handover(loop)
            loop.call_soon(self._hand_over, loop)
        handover.rows.append(row)
        handover.futures.append(future)
        self._submitted += 1  # written by the loop, read by anyone: only a bound depends on it
        return future

    def waiting(self) -> bool:
        """Whether webhooks wait for their commit (an in-process worker gives way to them)."""
        return self._submitted > sum(writer.settled for writer in self._writers)

    def in_burst(self) -> bool:
        """Whether webhooks wait now, or queued behind a commit in flight in the last
        `BURST_SECONDS`: a burst is on (an in-process worker keeps its SQLite transactions short
        meanwhile). A trickle, each webhook committed before the next, is no burst."""
        return self.waiting() or self._clock() - self._queued_behind_at < BURST_SECONDS

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        handover = self._open.pop(loop)
        # Once per loop iteration, not per request: were earlier webhooks still unsettled?
        if self._submitted - len(handover.rows) > sum(w.settled for w in self._writers):
            self._queued_behind_at = self._clock()
        self._queue.put(handover)

    # What the writers use (`_Writer`): the queue, the shared state, the commit callback.

    def next_batch(self) -> tuple[list[_Handover], int, bool]:
        """Wait for queued rows and take what is queued (up to the batch size); True: stop."""
        first = self._queue.get()
        if first is _STOP:
            return [], 0, True
        batch: list[_Handover] = [first]
        size = len(first.rows)
        while size < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, size, True
            batch.append(item)
            size += len(item.rows)
        return batch, size, False

    def committed(self) -> None:
        with self.state.lock:
            recovered = self.state.consecutive_failures > 0
            self.state.last_success = time.monotonic()
            self.state.consecutive_failures = 0
        if recovered:
            self._failures.flush()  # the failures counted since the last line
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def report(self, size: int) -> None:
        """`size` webhooks were settled by one commit (metrics, the worker's wake-up)."""
        if self._on_commit is not None:
            self._on_commit(size)

    def connect(self) -> tuple[Connection, bool]:
        """A new writer connection in autocommit; True when it is SQLite's (checkpointed here)."""
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return conn, self._checkpointer is not None

    def forget_file(self) -> None:
        """Close the engine's idle connections (to a SQLite file no longer at its path)."""
        self._engine.dispose()

    def record_failure(self, exc: Exception) -> None:
        with self.state.lock:
            self.state.last_failure = time.monotonic()
            self.state.last_error_class = type(exc).__name__
            self.state.consecutive_failures += 1
        self._failures.log(
            "webhook_store_failed",
            error_class="db",
            error_type=type(exc).__name__,
            error=describe(exc),
        )


class _Writer:
    """One writer thread's loop and its connection."""

    def __init__(self, committer: GroupCommitter) -> None:
        self._committer = committer
        self._conn: Connection | None = None
        self._lock_wait = 0.0  # SQLite: how long to keep asking for a write lock held elsewhere
        self.settled = 0  # written by this writer's thread only

    def run(self) -> None:
        try:
            while True:
                batch, size, stop = self._committer.next_batch()
                if batch:
                    self._commit(batch, size)
                if stop:
                    return
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _commit(self, batch: list[_Handover], size: int) -> None:
        rows = [row for handover in batch for row in handover.rows]
        try:
            inserted = self._store(rows)
        except Exception as exc:  # every failure must reach the waiting requests as a 503
            self._drop_connection()
            if isinstance(exc, DatabaseFileReplacedError):
                # Close every pooled connection to the old file now, while nothing is at its
                # path yet: the last one to close removes its WAL by name, which must not be
                # the WAL of a database put there later.
                self._committer.forget_file()
            if size > 1 and _refused_row(exc):
                # One row the database refuses must not fail the webhooks it shares a batch with.
                self._commit_each(batch, rows)
                return
            self._committer.record_failure(exc)
            error = DatabaseUnavailableError(describe(exc))
            self._settle(batch, [error] * size)
            return
        self._committer.committed()
        outcomes: list[bool | Exception] = []
        for row in rows:
            # A webhook id repeated within one batch is new only the first time (W3).
            outcomes.append(row["webhook_id"] in inserted)
            inserted.discard(row["webhook_id"])
        self._settle(batch, outcomes)
        self._report(size)

    def _commit_each(self, batch: list[_Handover], rows: list[dict[str, Any]]) -> None:
        """Store the rows of a refused batch one by one; only the offending ones fail (503)."""
        outcomes: list[bool | Exception] = []
        for row in rows:
            try:
                outcomes.append(bool(self._store([row])))
            except Exception as exc:  # this row's own failure, answered 503 like any other
                self._drop_connection()
                log.error(
                    "webhook_row_refused",
                    error_class="db",
                    error_type=type(exc).__name__,
                    webhook_id=identifier(str(row.get("webhook_id"))[:120]),
                    error=describe(exc),
                )
                outcomes.append(DatabaseUnavailableError(describe(exc)))
        if any(not isinstance(o, Exception) for o in outcomes):
            self._committer.committed()
        self._settle(batch, outcomes)
        self._report(len(rows))

    def _store(self, rows: list[dict[str, Any]]) -> set[str]:
        """`events.insert_events`, asking again every 0.5 ms while SQLite's write lock is held.

        SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ... ms between attempts: a batch that
        met a worker's or a cleanup's transaction of a few milliseconds slept up to twice as
        long again, and every acknowledgement in it with it. A repeated batch is safe: rows an
        interrupted earlier statement stored carry this batch's `received_at`, so they are
        still reported as new (`events.insert_events`).
        """
        deadline: float | None = None
        while True:
            try:
                conn = self._connection()  # (re)connecting also reads the bound
                inserted = events.insert_events(conn, rows)
                if self._committer.sqlite_file is not None:
                    # A file deleted or replaced since the connection opened it: committed
                    # into a file nobody will read again, so not stored (503, sent again).
                    ensure_same_file(conn, self._committer.sqlite_file)
                return inserted
            except Exception as exc:
                if deadline is None:
                    deadline = time.monotonic() + self._lock_wait
                if not _lock_held_elsewhere(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(_LOCK_POLL_SECONDS)

    def _report(self, size: int) -> None:
        self._committer.report(size)

    def _settle(self, batch: list[_Handover], outcomes: list[bool | Exception]) -> None:
        """Settle every future of the batch with one callback per event loop (cheap under load)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], Any]]] = {}
        done = 0
        for handover in batch:
            settled = outcomes[done : done + len(handover.rows)]
            by_loop.setdefault(handover.loop, []).extend(
                zip(handover.futures, settled, strict=True)
            )
            done += len(handover.rows)
        self.settled += done
        for loop, items in by_loop.items():
            # A loop that closed while we committed has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, items)

    def _connection(self) -> Connection:
        """The writer's connection, in autocommit: one statement per batch, which commits itself.

        One connection for the thread's life: a pool checkout (and PostgreSQL's pre-ping round
        trip) per batch cost more than the INSERT. In autocommit the whole batch is one call
        into the driver, which gives the GIL to the event loop once, not once per BEGIN, INSERT
        and COMMIT (each hand-back of the GIL waited for the busy loop). A failed batch drops
        the connection and the next one connects afresh, so an outage heals without a restart.
        """
        if self._conn is None:
            self._conn, sqlite = self._committer.connect()
            if sqlite:
                raw = self._conn.connection.driver_connection
                assert raw is not None  # narrows the type: a connected pysqlite has one  # nosec B101
                WalCheckpointer.take_over(raw)
                # The lock is asked for by `_store`, not by SQLite's sleeping busy handler.
                self._lock_wait = sqlite_pragmas.take_busy_timeout(raw)
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is already broken; only free it
                conn.invalidate()
                conn.close()


def _settle_all(items: list[tuple[asyncio.Future[bool], Any]]) -> None:
    for future, outcome in items:
        if future.done():  # its request timed out and answered 503 already
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


_LOCK_POLL_SECONDS = 0.0005


def _lock_held_elsewhere(exc: BaseException) -> bool:
    """SQLite's SQLITE_BUSY: another connection holds the write lock (nothing was changed)."""
    original = getattr(exc, "orig", exc)
    return getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def _is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _refused_row(exc: Exception) -> bool:
    """A failure caused by a row's values (PEP 249 DataError / IntegrityError), not the database."""
    return any(c.__name__ in ("DataError", "IntegrityError") for c in type(exc).__mro__)
