"""Group commit: concurrent webhook acknowledgements share one durable transaction (W4, W5).

Request handlers put their row on a queue and await a future. One writer thread takes whatever
is queued (up to a batch size), inserts it in one transaction, commits, and resolves every future
of the batch with one loop callback. Each response still waits for its own commit; under load
one fsync pays for many webhooks instead of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from timedify import store
from timedify.errors import DatabaseUnavailableError
from timedify.logs import get_logger

_STOP = object()
log = get_logger("timedify.ingest")


@dataclass
class _Pending:
    row: dict[str, Any]
    future: asyncio.Future[bool]
    loop: asyncio.AbstractEventLoop


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
    """One writer thread that commits queued webhook rows in batches."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 512,
        max_queue: int = 10_000,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._on_commit = on_commit
        self.state = CommitState()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="timedify-committer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, row: dict[str, Any]) -> asyncio.Future[bool]:
        """Queue `row`; the future resolves to True (new) / False (duplicate) once committed."""
        if self._queue.qsize() >= self._max_queue:
            raise QueueFullError("ingest queue is full: the database is not keeping up")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put(_Pending(row, future, loop))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Pending] = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self._engine.begin() as conn:
                inserted = store.insert_events(conn, [p.row for p in batch])
        except Exception as exc:  # every failure must reach the waiting requests as a 503
            self._record_failure(exc)
            error = DatabaseUnavailableError(_short(exc))
            _resolve(batch, lambda p: p.future.set_exception(error))
            return
        with self.state.lock:
            self.state.last_success = time.monotonic()
            self.state.consecutive_failures = 0
        _resolve(batch, lambda p: p.future.set_result(p.row["webhook_id"] in inserted))
        if self._on_commit is not None:
            self._on_commit(len(batch))

    def _record_failure(self, exc: Exception) -> None:
        with self.state.lock:
            self.state.last_failure = time.monotonic()
            self.state.last_error_class = type(exc).__name__
            self.state.consecutive_failures += 1
        log.error(
            "webhook_store_failed",
            error_class="db",
            error_type=type(exc).__name__,
            error=_short(exc),
        )


def _resolve(batch: list[_Pending], settle: Callable[[_Pending], None]) -> None:
    """Settle every future of the batch with one callback per event loop (cheap under load)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for pending in batch:
        by_loop.setdefault(pending.loop, []).append(pending)
    for loop, items in by_loop.items():

        def settle_all(items: list[_Pending] = items) -> None:
            for item in items:
                if not item.future.done():
                    settle(item)

        # A loop that closed while we committed has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle_all)


def _short(exc: Exception) -> str:
    """The first line of a driver error: enough to diagnose, without statement parameters."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
