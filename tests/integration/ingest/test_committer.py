"""Group commit (W4): a row the database refuses fails alone, not the batch it shares."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.helpers import events
from tests.support.rows import received_row
from timedify.db import make_engine, sqlite_path
from timedify.errors import DatabaseUnavailableError
from timedify.ingest.committer import BURST_SECONDS, GroupCommitter, QueueFullError


@contextmanager
def running(url: str, *, writers: int = 1, **engine_options: Any) -> Iterator[GroupCommitter]:
    """A started committer on a fresh engine; stopped (its queue committed) and freed after."""
    engine = make_engine(url, **engine_options)
    committer = GroupCommitter(engine, writers=writers)
    committer.start()
    try:
        yield committer
    finally:
        committer.stop()
        engine.dispose()


def test_a_refused_row_fails_alone(db_url: str) -> None:
    good = [received_row(str(uuid.uuid4())) for _ in range(4)]
    bad = {**received_row(str(uuid.uuid4())), "topic": None}  # NOT NULL: refused on both databases
    with running(db_url) as committer:

        async def submit_together() -> list[bool | BaseException]:
            futures = [committer.submit(row) for row in [good[0], good[1], bad, good[2], good[3]]]
            return await asyncio.gather(*futures, return_exceptions=True)

        outcomes = asyncio.run(submit_together())
    assert outcomes[:2] + outcomes[3:] == [True, True, True, True]
    assert isinstance(outcomes[2], DatabaseUnavailableError)
    assert sorted(e["webhook_id"] for e in events(db_url)) == sorted(r["webhook_id"] for r in good)
    assert not committer.state.failing, "the database itself is fine: /health stays pass"


def test_the_database_down_fails_the_whole_batch() -> None:
    """Not a row's fault (nothing to connect to): every waiting request gets the error."""
    nowhere = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with running(nowhere, connect_timeout_s=1) as committer:

        async def submit() -> list[bool | BaseException]:
            futures = [committer.submit(received_row(str(uuid.uuid4()))) for _ in range(3)]
            return await asyncio.gather(*futures, return_exceptions=True)

        outcomes = asyncio.run(submit())
    assert all(isinstance(o, DatabaseUnavailableError) for o in outcomes)
    assert committer.state.failing


def test_several_writers_commit_every_row_once(db_url: str) -> None:
    """PostgreSQL writers take turns from one queue (SQLite keeps one): each row is committed
    once, each request learns whether its webhook was new, a repeat in flight is a duplicate."""
    rows = [received_row(str(uuid.uuid4())) for _ in range(300)]
    with running(db_url, writers=3) as committer:

        async def submit_in_waves() -> list[bool | BaseException]:
            outcomes: list[bool | BaseException] = []
            for start in range(0, len(rows), 30):  # one hand-over per iteration, many batches
                wave = rows[start : start + 30]
                futures = [committer.submit(row) for row in wave + wave[:1]]
                outcomes += await asyncio.gather(*futures, return_exceptions=True)
            return outcomes

        outcomes = asyncio.run(submit_in_waves())
        threads = [t.name for t in threading.enumerate()]
    expected_writers = 1 if db_url.startswith("sqlite") else 3
    assert sum(name.startswith("timedify-committer-") for name in threads) == expected_writers
    assert outcomes == ([True] * 30 + [False]) * 10
    stored = [e["webhook_id"] for e in events(db_url)]
    assert sorted(stored) == sorted(r["webhook_id"] for r in rows)


def test_a_write_lock_held_elsewhere_is_waited_for_not_failed(sqlite_url: str) -> None:
    """SQLite: the writer keeps asking for the lock a worker or a cleanup holds for a moment
    (it does not sleep in SQLite's busy handler), and the webhook is stored once, as new - also
    as the very first batch, before the writer has a connection."""
    path = sqlite_path(sqlite_url)
    assert path is not None
    row = received_row(str(uuid.uuid4()))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with running(sqlite_url) as committer:

            async def submit_while_locked() -> bool:
                holder.execute("BEGIN IMMEDIATE")
                future = committer.submit(row)
                await asyncio.sleep(0.3)
                assert not future.done(), "still waiting for the lock"
                holder.execute("COMMIT")
                return await future

            outcome = asyncio.run(submit_while_locked())
    finally:
        holder.close()
    assert outcome is True
    assert [e["webhook_id"] for e in events(sqlite_url)].count(row["webhook_id"]) == 1
    assert not committer.state.failing


def test_a_full_queue_refuses_until_the_writers_catch_up(sqlite_url: str) -> None:
    """`INGEST_MAX_QUEUE`: past the bound a request is refused at once (503), not queued; once
    the writers have settled what was waiting, requests are taken again."""
    engine = make_engine(sqlite_url)
    committer = GroupCommitter(engine, max_queue=5)  # not started yet: nothing settles

    async def scenario() -> None:
        waiting = [committer.submit(received_row(str(uuid.uuid4()))) for _ in range(5)]
        try:
            committer.submit(received_row(str(uuid.uuid4())))
        except QueueFullError:
            pass
        else:
            raise AssertionError("a sixth row was queued past the bound of five")
        committer.start()
        assert await asyncio.gather(*waiting) == [True] * 5
        assert await committer.submit(received_row(str(uuid.uuid4()))) is True

    try:
        asyncio.run(scenario())
    finally:
        committer.stop()
        engine.dispose()
    assert len(events(sqlite_url)) == 6


def test_a_trickle_is_no_burst(sqlite_url: str) -> None:
    """Webhooks committed one before the next never make `in_burst()` true: an in-process
    worker keeps its long SQLite transactions (and its drain speed) under everyday traffic."""
    engine = make_engine(sqlite_url)
    committer = GroupCommitter(engine)
    committer.start()

    async def one_at_a_time() -> None:
        for _ in range(3):
            await committer.submit(received_row(str(uuid.uuid4())))
            assert not committer.in_burst()

    try:
        assert not committer.in_burst(), "nothing was ever sent"
        asyncio.run(one_at_a_time())
    finally:
        committer.stop()
        engine.dispose()


def test_webhooks_queued_behind_a_commit_make_a_burst_that_outlasts_its_waves(
    sqlite_url: str,
) -> None:
    """Rows handed over while earlier ones are unsettled mark a burst: `in_burst()` stays true
    between the waves (nothing waits then) for `BURST_SECONDS`, then turns false."""
    now = [100.0]
    engine = make_engine(sqlite_url)
    committer = GroupCommitter(engine, clock=lambda: now[0])  # not started: nothing settles

    async def two_hand_overs() -> None:
        first = committer.submit(received_row(str(uuid.uuid4())))
        await asyncio.sleep(0)  # the loop's turn: the first row is handed over
        second = committer.submit(received_row(str(uuid.uuid4())))
        await asyncio.sleep(0)  # handed over behind the unsettled first
        committer.start()
        assert await asyncio.gather(first, second) == [True, True]

    try:
        asyncio.run(two_hand_overs())
        assert not committer.waiting()
        assert committer.in_burst(), "between two waves of a burst"
        now[0] += BURST_SECONDS + 0.001
        assert not committer.in_burst(), "the burst is over"
    finally:
        committer.stop()
        engine.dispose()
