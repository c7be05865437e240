"""A reading taken at most once per event-loop iteration and shared by everything in it.

The requests an iteration handles arrived within the same few milliseconds; a clock reading or a
file check taken for the first of them is as true for the others, and each costs a system call
or a conversion that thousands of requests a second would otherwise pay one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerIteration(Generic[T]):
    """`read()`, called again only in a later iteration of the running loop."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._value: T | None = None
        self._fresh = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if not self._fresh or loop is not self._loop:  # or a reading left by a stopped loop
            self._value, self._fresh, self._loop = self._read(), True, loop
            loop.call_soon(self._expire)
        return self._value  # type: ignore[return-value]  # set just above when not fresh

    def _expire(self) -> None:
        self._fresh = False
