"""P1 under a fault: a worker whose batch transaction failed (the database went away between
its claim and its commit) knows those events were not applied. It gives them back as soon as
the database answers again, instead of leaving them to wait out their lease (60 s)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.support.helpers import events, store_events
from tests.support.pgcluster import PgCluster
from tests.support.settings import SHOP, make_settings
from tests.support.sqlite_lock import sqlite_locked_by_another_process
from timedify import migrate
from timedify.db import make_engine, sqlite_path
from timedify.models import EventState
from timedify.processing.worker import Worker
from timedify.testing import signed_webhook


@pytest.fixture(params=["sqlite", "postgresql"])
def faulty(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Callable[[], AbstractContextManager[None]]]]:
    """A database and a context manager during which it refuses every write."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'faulty.sqlite3'}"
        path = sqlite_path(url)
        assert path is not None
        yield url, lambda: sqlite_locked_by_another_process(path)
        return
    cluster = PgCluster().init().start()
    try:
        url = cluster.create_database("faulty")
        yield url, lambda: _stopped(cluster)
    finally:
        cluster.stop()


@contextmanager
def _stopped(cluster: PgCluster) -> Iterator[None]:
    """The PostgreSQL server is down until the block ends."""
    cluster.stop("immediate")
    try:
        yield
    finally:
        cluster.start()


def test_a_batch_whose_transaction_failed_is_released_once_the_database_is_back(
    faulty: tuple[str, Callable[[], AbstractContextManager[None]]], tmp_path: Path
) -> None:
    url, outage = faulty
    settings = make_settings(url, tmp_path)
    engine = make_engine(url, busy_timeout_ms=200)
    migrate.upgrade(engine)
    store_events(url, [signed_webhook("app/uninstalled", SHOP, "x") for _ in range(3)])
    faults = ExitStack()
    broken: list[bool] = []

    class BreakAfterTheClaim:
        """Asked before each transaction after the claim: the first one meets the fault."""

        def waiting(self) -> bool:
            if not broken:
                broken.append(True)
                faults.enter_context(outage())
            return False

        def in_burst(self) -> bool:
            return False

    worker = Worker(settings, engine, jobs=[], acknowledgements=BreakAfterTheClaim())
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
            worker.run_once()
        faults.close()  # the database answers again

        claimed = worker.run_once()
    finally:
        faults.close()
        engine.dispose()

    assert claimed == 3, "the events waited for their lease to expire"
    found = events(url)
    assert {e["state"] for e in found} == {EventState.PROCESSED}
    assert [e["attempts"] for e in found] == [1, 1, 1], "the failed try is not counted"
