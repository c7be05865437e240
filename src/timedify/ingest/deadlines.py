"""Coarse deadlines for the webhook hot path: a set insertion per wait, not a timer.

`asyncio.timeout()` schedules and cancels a timer handle on every use, which cost about as much
as verifying the signature, twice per webhook. The ingest bounds (by default 2 s for the commit,
10 s for the body) need no millisecond precision: the waits that start within one `resolution`
of each other form a group with two timers of its own, one closing the group to newcomers and
one expiring, at once, whatever is still in it when the bound has passed for its latest member.
A wait that ends in time only leaves its group's set.
"""

from __future__ import annotations

import asyncio
from typing import Any


class WaitGroup(set[Any]):
    """The waits that started within one `resolution`; they expire together.

    `discard(target)` ends a wait (its work finished in time). `expired` says whether the group
    reached its deadline, i.e. whether a cancellation of one of its tasks came from it.
    """

    __slots__ = ("expired",)

    def __init__(self) -> None:
        super().__init__()
        self.expired = False


class Deadlines:
    """Expire futures (with `TimeoutError`) or tasks (cancelled) `seconds` after they start.

    A wait ends between `seconds` and `seconds + resolution` after it started, never earlier.
    """

    def __init__(self, seconds: float, resolution: float = 0.1) -> None:
        self._seconds = seconds
        self._resolution = resolution
        self._open: WaitGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, target: asyncio.Future[Any]) -> WaitGroup:
        """Bound `target`; call `discard(target)` on the returned group when the wait is over."""
        loop = asyncio.get_running_loop()
        group = self._open
        # A group of another loop (an app served by a new loop, in tests) will never close.
        if group is None or loop is not self._loop:
            group = self._open = WaitGroup()
            self._loop = loop
            loop.call_later(self._resolution, self._close, group)
            loop.call_later(self._resolution + self._seconds, _expire, group)
        group.add(target)
        return group

    def _close(self, group: WaitGroup) -> None:
        if self._open is group:
            self._open = None


def _expire(group: WaitGroup) -> None:
    group.expired = True
    targets = list(group)
    group.clear()
    for target in targets:
        if target.done():
            continue
        if isinstance(target, asyncio.Task):
            target.cancel()
        else:
            target.set_exception(TimeoutError())
