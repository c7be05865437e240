"""The ingest clock: one reading per event-loop iteration, never one left by another loop."""

from __future__ import annotations

import asyncio
from datetime import datetime

from timedify.ingest import _IterationClock


def test_one_reading_per_iteration_then_a_new_one() -> None:
    clock = _IterationClock()

    async def readings() -> tuple[datetime, datetime, datetime]:
        first, same = clock.now(), clock.now()
        await asyncio.sleep(0.002)  # the next iterations
        return first, same, clock.now()

    first, same, later = asyncio.run(readings())
    assert same is first
    assert later > first


def test_a_new_loop_never_gets_the_reading_of_a_stopped_one() -> None:
    clock = _IterationClock()

    async def read() -> datetime:
        return clock.now()

    first = asyncio.run(read())  # the loop stops before its tick can clear the reading
    second = asyncio.run(read())
    assert second > first
