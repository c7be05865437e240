"""Coarse deadlines of the ingest path: waits expire after their bound, finished ones never."""

from __future__ import annotations

import asyncio

import pytest

from timedify.deadlines import Deadlines


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
        wait.done()
        later: asyncio.Future[bool] = loop.create_future()
        later_wait = deadlines.start(later)
        later_wait.done()
        await asyncio.sleep(0.15)
        assert not wait.expired
        assert not later_wait.expired
        assert await quick is True
        assert not later.done(), "a wait marked done is forgotten, its future untouched"

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
