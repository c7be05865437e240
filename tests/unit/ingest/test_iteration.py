"""Readings shared by an event-loop iteration: one per iteration, none left by another loop."""

from __future__ import annotations

import asyncio
import itertools

from timedify.ingest.iteration import PerIteration


def test_one_reading_per_iteration_then_a_new_one() -> None:
    reads = itertools.count()
    reading = PerIteration(lambda: next(reads))

    async def readings() -> tuple[int, int, int]:
        first, same = reading.get(), reading.get()
        await asyncio.sleep(0)  # the next iteration
        return first, same, reading.get()

    assert asyncio.run(readings()) == (0, 0, 1)


def test_a_false_reading_is_kept_for_the_iteration_too() -> None:
    """A falsy value (a missing file) is a reading like any other, not "no reading yet"."""
    reads: list[bool] = []

    def exists() -> bool:
        reads.append(False)
        return False

    reading = PerIteration(exists)

    async def twice() -> tuple[bool, bool]:
        return reading.get(), reading.get()

    assert asyncio.run(twice()) == (False, False)
    assert len(reads) == 1


def test_a_new_loop_never_gets_the_reading_of_a_stopped_one() -> None:
    reads = itertools.count()
    reading = PerIteration(lambda: next(reads))
    stopped = asyncio.new_event_loop()
    readings: list[int] = []
    # The loop stops in the iteration that took the reading: its expiry never runs.
    stopped.call_soon(lambda: (readings.append(reading.get()), stopped.stop()))
    stopped.run_forever()
    stopped.close()

    async def read() -> int:
        return reading.get()

    readings.append(asyncio.run(read()))
    assert readings == [0, 1]
