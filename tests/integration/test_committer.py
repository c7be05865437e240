"""Group commit (W4): a row the database refuses fails alone, not the batch it shares."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid

from tests.integration.test_store_insert import _row
from tests.support.helpers import events
from timedify.committer import GroupCommitter
from timedify.db import make_engine
from timedify.errors import DatabaseUnavailableError


def test_a_refused_row_fails_alone(db_url: str) -> None:
    engine = make_engine(db_url)
    committer = GroupCommitter(engine)
    committer.start()
    good = [_row(str(uuid.uuid4())) for _ in range(4)]
    bad = {**_row(str(uuid.uuid4())), "topic": None}  # NOT NULL: refused on both databases

    async def submit_together() -> list[bool | BaseException]:
        futures = [committer.submit(row) for row in [good[0], good[1], bad, good[2], good[3]]]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        outcomes = asyncio.run(submit_together())
    finally:
        committer.stop()
        engine.dispose()
    assert outcomes[:2] + outcomes[3:] == [True, True, True, True]
    assert isinstance(outcomes[2], DatabaseUnavailableError)
    assert sorted(e["webhook_id"] for e in events(db_url)) == sorted(r["webhook_id"] for r in good)
    assert not committer.state.failing, "the database itself is fine: /health stays pass"


def test_the_database_down_fails_the_whole_batch() -> None:
    """Not a row's fault (nothing to connect to): every waiting request gets the error."""
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_timeout_s=1)
    committer = GroupCommitter(engine)
    committer.start()

    async def submit() -> list[bool | BaseException]:
        futures = [committer.submit(_row(str(uuid.uuid4()))) for _ in range(3)]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        outcomes = asyncio.run(submit())
    finally:
        committer.stop()
        engine.dispose()
    assert all(isinstance(o, DatabaseUnavailableError) for o in outcomes)
    assert committer.state.failing


def test_several_writers_commit_every_row_once(db_url: str) -> None:
    """PostgreSQL writers take turns from one queue (SQLite keeps one): each row is committed
    once, each request learns whether its webhook was new, a repeat in flight is a duplicate."""
    engine = make_engine(db_url)
    committer = GroupCommitter(engine, writers=3)
    committer.start()
    rows = [_row(str(uuid.uuid4())) for _ in range(300)]

    async def submit_in_waves() -> list[bool | BaseException]:
        outcomes: list[bool | BaseException] = []
        for start in range(0, len(rows), 30):  # one hand-over per loop iteration, many batches
            wave = rows[start : start + 30]
            futures = [committer.submit(row) for row in wave + wave[:1]]
            outcomes += await asyncio.gather(*futures, return_exceptions=True)
        return outcomes

    try:
        outcomes = asyncio.run(submit_in_waves())
        threads = [t.name for t in threading.enumerate()]
    finally:
        committer.stop()
        engine.dispose()
    expected_writers = 1 if db_url.startswith("sqlite") else 3
    assert sum(name.startswith("timedify-committer-") for name in threads) == expected_writers
    assert outcomes == ([True] * 30 + [False]) * 10
    stored = [e["webhook_id"] for e in events(db_url)]
    assert sorted(stored) == sorted(r["webhook_id"] for r in rows)


def test_a_write_lock_held_elsewhere_is_waited_for_not_failed(sqlite_url: str) -> None:
    """SQLite: the writer keeps asking for the lock a worker or a cleanup holds for a moment
    (it does not sleep in SQLite's busy handler), and the webhook is stored once, as new."""
    from timedify.db import sqlite_path

    path = sqlite_path(sqlite_url)
    assert path is not None
    engine = make_engine(sqlite_url)
    committer = GroupCommitter(engine)
    committer.start()
    row = _row(str(uuid.uuid4()))
    holder = sqlite3.connect(path, isolation_level=None)

    async def submit_while_locked() -> bool:
        # A first commit opens the writer's connection (and sets up its lock polling).
        await committer.submit(_row(str(uuid.uuid4())))
        holder.execute("BEGIN IMMEDIATE")
        future = committer.submit(row)
        await asyncio.sleep(0.3)
        assert not future.done(), "still waiting for the lock"
        holder.execute("COMMIT")
        return await future

    try:
        outcome = asyncio.run(submit_while_locked())
    finally:
        holder.close()
        committer.stop()
        engine.dispose()
    assert outcome is True
    assert [e["webhook_id"] for e in events(sqlite_url)].count(row["webhook_id"]) == 1
    assert not committer.state.failing
