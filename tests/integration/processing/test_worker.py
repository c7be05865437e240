"""P1-P3: retries, dead letters, replay, leases and graceful stop, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Connection, Engine

from tests.support.handlers import BROKEN, EMAIL
from tests.support.helpers import drain, events, store_event, store_events, table_rows
from tests.support.settings import SHOP, make_settings
from timedify.db import make_engine
from timedify.models import (
    AppliedEvent,
    DeadLetter,
    EventAttempt,
    EventState,
    ShopSession,
    WorkerHeartbeat,
)
from timedify.processing import batches, dead_letters
from timedify.processing.followups import FollowUps
from timedify.processing.handlers import HANDLERS, Handler
from timedify.processing.retry import RetryPolicy
from timedify.processing.worker import Worker
from timedify.records import AttemptResult, ClaimedEvent
from timedify.settings import Settings
from timedify.store import claims
from timedify.store import events as event_store
from timedify.testing import signed_webhook


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, retry_max_attempts=3, retry_base_seconds=0.01)


def test_failing_handler_becomes_dead_letter_after_max_attempts(
    settings: Settings, db_url: str
) -> None:
    """P2/P3: three attempts, each recorded, then a dead letter with error and stack, no PII."""
    hook = store_event(db_url, "customers/redact", SHOP)
    drain(settings, BROKEN)
    [event] = events(db_url)
    assert event["state"] == EventState.DEAD
    assert event["attempts"] == 3
    attempts = table_rows(db_url, EventAttempt)
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "dead"]
    assert {a["error_class"] for a in attempts} == {"Broken"}
    [dead] = table_rows(db_url, DeadLetter)
    assert (dead["topic"], dead["shop_domain"], dead["attempts"]) == ("customers/redact", SHOP, 3)
    assert dead["first_failed_at"] <= dead["last_failed_at"]
    assert dead["error"].startswith("Broken: cannot handle customer")
    assert "Traceback" in dead["stack"]
    assert "broken" in dead["stack"]
    for text in [
        dead["error"],
        dead["stack"],
        event["last_error"],
        *[a["error"] for a in attempts],
    ]:
        assert EMAIL not in text
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert event_store.dead_letters_by_topic(conn) == {"customers/redact": 1}
        [view] = dead_letters.list_dead_letters(conn, dead_letters.Filters())
    engine.dispose()
    assert view.webhook_id == hook


def replay(settings: Settings, dead_id: int, handlers: Mapping[str, Handler]) -> str:
    engine = make_engine(settings.database_url)
    try:
        return dead_letters.replay(
            engine,
            dead_id,
            lease=timedelta(seconds=60),
            policy=RetryPolicy.from_settings(settings),
            handlers=handlers,
        ).state
    finally:
        engine.dispose()


def test_failed_replay_stays_dead_and_fixed_replay_resolves(
    settings: Settings, db_url: str
) -> None:
    """P3: a replay that fails again keeps the dead letter (count, last error); once fixed it
    succeeds through the same handler and the dead letter is resolved."""
    store_event(db_url, "customers/redact", SHOP)
    drain(settings, BROKEN)
    [dead] = table_rows(db_url, DeadLetter)

    assert replay(settings, dead["id"], BROKEN) == EventState.DEAD
    [again] = table_rows(db_url, DeadLetter)
    assert (again["attempts"], again["replays"], again["resolved_at"]) == (4, 1, None)
    assert again["last_failed_at"] >= dead["last_failed_at"]
    assert events(db_url)[0]["state"] == EventState.DEAD

    assert replay(settings, dead["id"], HANDLERS) == EventState.PROCESSED
    [resolved] = table_rows(db_url, DeadLetter)
    assert resolved["resolved_at"] is not None
    assert (resolved["resolution"], resolved["replays"]) == ("replayed", 2)
    assert events(db_url)[0]["state"] == EventState.PROCESSED
    with pytest.raises(dead_letters.DeadLetterNotFound):
        replay(settings, dead["id"], HANDLERS)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert event_store.dead_letters_by_topic(conn) == {}
    engine.dispose()


def test_replay_all_with_filters_and_cleanup(settings: Settings, db_url: str) -> None:
    store_event(db_url, "customers/redact", SHOP)
    store_event(db_url, "customers/redact", "other-shop.myshopify.com")
    drain(settings, BROKEN)
    engine = make_engine(db_url)
    try:
        policy = RetryPolicy.from_settings(settings)
        results = dead_letters.replay_all(
            engine,
            dead_letters.Filters(shop=SHOP),
            lease=timedelta(seconds=60),
            policy=policy,
        )
        assert [(r.topic, r.ok) for r in results] == [("customers/redact", True)]
        assert dead_letters.cleanup(engine, timedelta(days=1)) == 0  # resolved just now
        assert dead_letters.cleanup(engine, timedelta(0)) == 1
        with engine.connect() as conn:
            [left] = dead_letters.list_dead_letters(conn, dead_letters.Filters())
        assert left.shop_domain == "other-shop.myshopify.com"
    finally:
        engine.dispose()


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_write(
    settings: Settings, db_url: str
) -> None:
    """P1: worker A's lease expires, B re-claims and applies; A's late attempt changes nothing."""
    store_event(db_url, "app/uninstalled", SHOP, event_id="evt-1")
    engine = make_engine(db_url)
    policy = RetryPolicy.from_settings(settings)
    try:
        expired = timedelta(seconds=-60)  # A's lease ran out long ago
        with engine.begin() as conn:
            [held_by_a] = claims.claim(
                conn, token="a", limit=10, lease=expired, now=datetime.now(UTC)
            )
        with engine.begin() as conn:
            [held_by_b] = claims.claim(
                conn, token="b", limit=10, lease=timedelta(seconds=60), now=datetime.now(UTC)
            )
        assert held_by_b.id == held_by_a.id
        assert held_by_b.attempts == 2
        assert batches.process(engine, held_by_a, policy=policy).state is AttemptResult.LOST
        assert batches.process(engine, held_by_b, policy=policy).state == EventState.PROCESSED
        assert batches.process(engine, held_by_a, policy=policy).state is AttemptResult.LOST
    finally:
        engine.dispose()
    assert len(table_rows(db_url, AppliedEvent)) == 1
    assert [a["outcome"] for a in table_rows(db_url, EventAttempt)] == ["processed"]


def test_stop_finishes_current_event_and_releases_the_rest(settings: Settings, db_url: str) -> None:
    """P1/SIGTERM semantics: nothing is left in `processing` after a graceful stop."""
    store_events(db_url, [signed_webhook("app/uninstalled", SHOP, "x") for _ in range(5)])
    started, go = threading.Event(), threading.Event()

    def slow(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
        started.set()
        assert go.wait(10)
        return HANDLERS["app/uninstalled"](conn, event, now)

    engine = make_engine(db_url)
    worker = Worker(settings, engine, handlers={**HANDLERS, "app/uninstalled": slow})
    worker.start()
    try:
        assert started.wait(10)
        assert worker.alive()
        stopper = threading.Thread(target=worker.stop)
        stopper.start()
        go.set()
        stopper.join(15)
        assert not worker.alive()
    finally:
        go.set()
        worker.stop()
        engine.dispose()
    states = sorted(e["state"] for e in events(db_url))
    assert states == ["processed", "received", "received", "received", "received"]
    assert all(e["attempts"] == 0 for e in events(db_url) if e["state"] == "received")
    assert all(e["lease_token"] is None for e in events(db_url))
    [beat] = table_rows(db_url, WorkerHeartbeat)
    assert beat["stopped_at"] is not None
    assert beat["processed"] == 1


def test_worker_survives_handler_errors_and_keeps_going(settings: Settings, db_url: str) -> None:
    store_event(db_url, "app_subscriptions/update", SHOP, payload={"unexpected": True})
    good = store_event(db_url, "app/uninstalled", SHOP)
    drain(settings)
    states = {e["webhook_id"]: e["state"] for e in events(db_url)}
    assert states[good] == EventState.PROCESSED
    assert sorted(states.values()) == ["dead", "processed"]
    [dead] = table_rows(db_url, DeadLetter)
    assert dead["error"].startswith("InvalidPayload")
    assert table_rows(db_url, ShopSession) == []


def test_a_batch_interrupted_by_an_error_is_released_not_kept(
    settings: Settings, db_url: str
) -> None:
    """Events the loop will not process are given back at once, not kept under a lease that
    the heartbeat would go on extending."""
    store_events(db_url, [signed_webhook("app/uninstalled", SHOP, "x") for _ in range(3)])

    def crash(_conn: Connection, _event: ClaimedEvent, _now: datetime) -> str | None:
        raise SystemExit("the loop itself is interrupted")

    engine = make_engine(db_url)
    worker = Worker(settings, engine, handlers={**HANDLERS, "app/uninstalled": crash})
    try:
        with pytest.raises(SystemExit):
            worker.run_once()
    finally:
        engine.dispose()
    assert {(e["state"], e["attempts"], e["lease_token"]) for e in events(db_url)} == {
        ("received", 0, None)
    }


def test_ignored_duplicates_are_not_counted_as_failures(settings: Settings, db_url: str) -> None:
    """H2: /health/webhooks failures count failed attempts, not deliberately ignored events."""
    store_event(db_url, "app/uninstalled", SHOP, event_id="evt-1")
    store_event(db_url, "app/uninstalled", SHOP, event_id="evt-1")
    store_event(db_url, "customers/redact", SHOP)
    drain(settings, BROKEN)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        activity = event_store.activity_by_topic(conn, datetime.now(UTC) - timedelta(hours=1))
    engine.dispose()
    assert activity["app/uninstalled"].failures_in_window == 0
    assert activity["customers/redact"].failures_in_window == 3
    assert activity["customers/redact"].dead_letters_in_window == 1


def test_a_worker_that_gives_way_to_acknowledgements_still_drains(
    settings: Settings, db_url: str
) -> None:
    """While acknowledgements wait (here: always) the worker pauses before each transaction
    and keeps it short, but it still applies everything: giving way is bounded."""
    store_events(
        db_url, [signed_webhook("app/uninstalled", f"s{n}.myshopify.com", "x") for n in range(4)]
    )
    acknowledgements = Acknowledging(waiting=True)
    engine = make_engine(db_url)
    worker = Worker(settings, engine, jobs=[], acknowledgements=acknowledgements)
    try:
        assert worker.run_once() == 4
    finally:
        engine.dispose()
    assert {e["state"] for e in events(db_url)} == {EventState.PROCESSED}
    assert len(table_rows(db_url, EventAttempt)) == 4
    assert acknowledgements.asked >= 4, "the worker did not wait while acknowledgements waited"


def test_during_a_burst_sqlite_transactions_stay_short(settings: Settings, db_url: str) -> None:
    """Between the waves of a burst nothing waits, but the next wave's commit would meet a
    long transaction: during a burst, each SQLite transaction ends after ~5 ms (here one
    event of 6 ms each), and the worker does not pause since nothing waits."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's commits do not wait for the worker's transaction")
    commits: list[int] = []
    engine = make_engine(db_url)
    sqlalchemy.event.listen(engine, "commit", lambda _conn: commits.append(1))
    acknowledgements = Acknowledging(waiting=False, in_burst=True)
    worker = _slow_worker(settings, db_url, engine, count=6, seconds=0.006, acks=acknowledgements)
    try:
        assert worker.run_once() == 6
    finally:
        engine.dispose()
    assert {e["state"] for e in events(db_url)} == {EventState.PROCESSED}
    # The claim's transaction, then one per event (a 20 ms one would have taken several).
    assert len(commits) >= 1 + 6
    assert acknowledgements.asked == 6, "asked once before each transaction, and not paused"


@pytest.mark.parametrize("in_burst", [True, False])
def test_during_a_burst_a_postgresql_worker_rests_after_each_transaction(
    settings: Settings, db_url: str, in_burst: bool
) -> None:
    """Its transactions hold nothing the commits wait for, but take the CPU the loop needs:
    during a burst it rests after each one for a share of the time it took (here transactions
    of at least 8 ms: one event of 8 ms each); outside a burst, and on SQLite, it never rests."""
    rests: list[float] = []
    engine = make_engine(db_url)
    acknowledgements = Acknowledging(waiting=False, in_burst=in_burst)
    worker = _slow_worker(
        settings, db_url, engine, count=3, seconds=0.008, acks=acknowledgements, rest=rests.append
    )
    try:
        assert worker.run_once() == 3
    finally:
        engine.dispose()
    assert {e["state"] for e in events(db_url)} == {EventState.PROCESSED}
    if db_url.startswith("sqlite") or not in_burst:
        assert rests == []
    else:
        assert rests, "the worker did not rest during the burst"
        # 0.4 of transactions that took at least the handlers' 3 x 8 ms (a sleep is never
        # shorter than asked).
        assert sum(rests) >= 0.4 * 0.024


def _slow_worker(
    settings: Settings,
    db_url: str,
    engine: Engine,
    *,
    count: int,
    seconds: float,
    acks: Acknowledging,
    rest: Callable[[float], object] | None = None,
) -> Worker:
    """A worker in `serve` over `count` stored uninstalls, each taking at least `seconds`."""
    store_events(
        db_url,
        [signed_webhook("app/uninstalled", f"s{n}.myshopify.com", "x") for n in range(count)],
    )

    def slow(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
        time.sleep(seconds)
        return HANDLERS["app/uninstalled"](conn, event, now)

    handlers = {**HANDLERS, "app/uninstalled": slow}
    return Worker(settings, engine, jobs=[], handlers=handlers, acknowledgements=acks, rest=rest)


class Acknowledging:
    """The webhooks a worker inside `serve` gives way to, as the test sets them."""

    def __init__(self, *, waiting: bool, in_burst: bool = False) -> None:
        self._waiting = waiting
        self._in_burst = in_burst or waiting
        self.asked = 0

    def waiting(self) -> bool:
        self.asked += 1
        return self._waiting

    def in_burst(self) -> bool:
        return self._in_burst


def test_followups_wait_while_the_worker_drains_a_backlog(db_url: str, tmp_path: Path) -> None:
    """A claim that comes back full means more is due: the re-reads that follow applied events
    wait until a claim takes what is left, and each shop is then read once for all its events."""
    settings = make_settings(db_url, tmp_path, worker_batch_size=2)
    shops = ["a.myshopify.com", "b.myshopify.com"]
    store_events(
        db_url,
        [signed_webhook("app/uninstalled", shops[n % 2], "x") for n in range(5)],
    )
    engine = make_engine(db_url)
    read: list[tuple[str, bool]] = []
    worker: Worker | None = None

    def reread(shop: str) -> None:
        assert worker is not None
        read.append((shop, worker.has_backlog()))

    followups = FollowUps(
        {"app/uninstalled": reread},
        settle=0,
        busy=lambda: worker is not None and worker.has_backlog(),
    )
    worker = Worker(settings, engine, jobs=[], after_commit=followups)
    try:
        assert worker.run_once() == 2
        assert worker.has_backlog()
        assert worker.run_once() == 2
        time.sleep(0.2)
        assert read == [], "a re-read ran while events were still due"
        assert worker.run_once() == 1
        assert not worker.has_backlog()
        assert followups.wait_idle(5)
        assert sorted(read) == [(shops[0], False), (shops[1], False)]
        assert worker.run_once() == 0
        assert not worker.has_backlog()
    finally:
        followups.stop()
        engine.dispose()
