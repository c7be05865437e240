"""Coarse deadlines for the webhook hot path: one timer per event loop, not two per request.

`asyncio.timeout()` schedules and cancels a timer handle on every use, which cost about as much
as verifying the signature, twice per webhook. The ingest bounds (by default 2 s for the commit,
10 s for the body) need no millisecond precision: waits of one bound are kept in arrival order
(so their deadlines are in order too) and a sweep every `resolution` seconds expires the ones
due. A wait that ended is dropped at the next sweep.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Wait:
    """One bounded wait; `expired` says whether the deadline, not the work, ended it."""

    __slots__ = ("deadline", "expired", "target")

    def __init__(self, deadline: float, target: asyncio.Future[Any]) -> None:
        self.deadline = deadline
        self.target: asyncio.Future[Any] | None = target
        self.expired = False

    def done(self) -> None:
        """The wait is over: the sweep will forget it."""
        self.target = None


class Deadlines:
    """Expire futures (with `TimeoutError`) or tasks (cancelled) `seconds` after they start."""

    def __init__(self, seconds: float, resolution: float = 0.1) -> None:
        self._seconds = seconds
        self._resolution = resolution
        self._waits: deque[Wait] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeping = False

    def start(self, target: asyncio.Future[Any]) -> Wait:
        """Bound `target`: a future gets `TimeoutError`, a task is cancelled when time is up."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an app served by a new loop (tests) starts afresh
            self._loop, self._waits, self._sweeping = loop, deque(), False
        wait = Wait(loop.time() + self._seconds, target)
        self._waits.append(wait)
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self._resolution, self._sweep, loop)
        return wait

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return
        now = loop.time()
        waits = self._waits
        while waits and (waits[0].target is None or waits[0].deadline <= now):
            wait = waits.popleft()
            target, wait.target = wait.target, None
            if target is None or target.done():
                continue
            wait.expired = True
            if isinstance(target, asyncio.Task):
                target.cancel()
            else:
                target.set_exception(TimeoutError())
        self._sweeping = bool(waits)
        if self._sweeping:
            loop.call_later(self._resolution, self._sweep, loop)
