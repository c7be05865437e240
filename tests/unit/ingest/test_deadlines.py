"""Coarse deadlines of the ingest path: waits expire after their bound, finished ones never."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from timedify.ingest.deadlines import Deadlines


def test_a_future_not_done_in_time_gets_timeout_error() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(0.05, resolution=0.01)
        slow: asyncio.Future[bool] = loop.create_future()
        wait = deadlines.start(slow)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow, 2)
        assert wait.expired

    asyncio.run(scenario())


def test_finished_waits_do_not_expire() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(0.05, resolution=0.01)
        quick: asyncio.Future[bool] = loop.create_future()
        wait = deadlines.start(quick)
        quick.set_result(True)
        wait.discard(quick)
        later: asyncio.Future[bool] = loop.create_future()
        later_wait = deadlines.start(later)
        later_wait.discard(later)
        await asyncio.sleep(0.15)
        assert await quick is True
        assert not later.done(), "a wait that ended is forgotten, its future untouched"

    asyncio.run(scenario())


def test_a_task_past_its_deadline_is_cancelled_and_marked() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(0.05, resolution=0.01)
        waits = []

        async def reader() -> str:
            task = asyncio.current_task()
            assert task is not None
            waits.append(deadlines.start(task))
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                task.uncancel()
                return "expired" if waits[0].expired else "cancelled"
            return "finished"

        assert await asyncio.wait_for(reader(), 2) == "expired"

    asyncio.run(scenario())


def test_no_wait_expires_before_its_bound() -> None:
    """Waits started across several groups each last at least `seconds` (never early)."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(0.1, resolution=0.03)
        lasted: list[float] = []
        futures = []
        for _ in range(8):
            future: asyncio.Future[bool] = loop.create_future()
            begun = loop.time()
            future.add_done_callback(lambda _, begun=begun: lasted.append(loop.time() - begun))
            deadlines.start(future)
            futures.append(future)
            await asyncio.sleep(0.012)
        for future in futures:
            with pytest.raises(TimeoutError):
                await future
        await asyncio.sleep(0)  # the last expiry's callbacks
        assert len(lasted) == 8
        # Never early (a loop timer never fires before its time); how late depends on the
        # machine's load and is not asserted here.
        assert min(lasted) >= 0.1 - 0.001

    asyncio.run(scenario())


def test_a_wait_on_a_new_loop_does_not_join_a_group_of_a_stopped_one() -> None:
    deadlines = Deadlines(0.05, resolution=0.01)

    async def expires() -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        deadlines.start(future)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), 1)
        return future.done() and not future.cancelled()  # expired by the deadline, in time

    stopped = asyncio.new_event_loop()
    stopped.call_soon(lambda: deadlines.start(stopped.create_future()))
    stopped.run_until_complete(asyncio.sleep(0))  # its group's timers never run: it stops
    stopped.close()
    assert asyncio.run(expires())
