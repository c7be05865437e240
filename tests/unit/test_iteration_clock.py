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
    stopped = asyncio.new_event_loop()
    readings: list[datetime] = []
    # The loop stops in the iteration that read the clock: its tick never runs.
    stopped.call_soon(lambda: (readings.append(clock.now()), stopped.stop()))
    stopped.run_forever()
    stopped.close()

    async def read() -> datetime:
        return clock.now()

    readings.append(asyncio.run(read()))
    assert readings[1] > readings[0]
