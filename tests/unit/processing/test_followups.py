"""What follows a committed webhook: when a shop's action runs, and how often."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from timedify.processing.followups import FollowUps
from timedify.records import AttemptResult, ClaimedEvent, Outcome

TOPIC = "app_subscriptions/update"
PROCESSED = Outcome(AttemptResult.PROCESSED)


def _event(shop: str, topic: str = TOPIC) -> ClaimedEvent:
    now = datetime.now(UTC)
    return ClaimedEvent(1, "w", topic, shop, None, now, now, b"{}", 1, "token")


def test_changes_to_a_shop_while_it_settles_are_answered_by_one_action() -> None:
    """Nothing runs before the window ends (an hour here); stopping runs what is queued at
    once, each shop once, in the order they came."""
    calls: list[str] = []
    followups = FollowUps({TOPIC: calls.append}, settle=3600)
    for shop in ("a.myshopify.com", "b.myshopify.com", "a.myshopify.com", "a.myshopify.com"):
        followups(_event(shop), PROCESSED)
    assert not followups.wait_idle(0.2)
    assert calls == []
    followups.stop(timeout=10)
    assert calls == ["a.myshopify.com", "b.myshopify.com"]


def test_a_change_arriving_while_the_action_runs_is_read_again() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def read(shop: str) -> None:
        calls.append(shop)
        started.set()
        release.wait(10)

    followups = FollowUps({TOPIC: read}, settle=0)
    followups(_event("a.myshopify.com"), PROCESSED)
    assert started.wait(10)
    followups(_event("a.myshopify.com"), PROCESSED)  # after the read began: not answered by it
    release.set()
    assert followups.wait_idle(10)
    followups.stop()
    assert calls == ["a.myshopify.com", "a.myshopify.com"]


def test_only_processed_events_of_known_topics_follow_and_the_queue_is_bounded() -> None:
    calls: list[str] = []
    followups = FollowUps({TOPIC: calls.append}, max_pending=1, settle=3600)
    followups(_event("a.myshopify.com", "app/uninstalled"), PROCESSED)
    followups(_event("b.myshopify.com"), Outcome(AttemptResult.RETRYING))
    followups(_event("c.myshopify.com"), PROCESSED)
    followups(_event("d.myshopify.com"), PROCESSED)  # beyond max_pending: dropped
    followups.stop(timeout=10)
    assert calls == ["c.myshopify.com"]


def test_while_busy_an_action_waits_and_runs_once_the_burst_is_over() -> None:
    """Inside `serve`: while webhooks are being acknowledged in a burst, a re-read waits."""
    busy = threading.Event()
    busy.set()
    ran = threading.Event()
    followups = FollowUps({TOPIC: lambda shop: ran.set()}, settle=0, busy=busy.is_set)
    followups(_event("a.myshopify.com"), PROCESSED)
    assert not ran.wait(0.5)
    busy.clear()
    assert ran.wait(10)
    followups.stop()


def test_a_stopping_worker_does_not_wait_for_the_burst_to_end() -> None:
    calls: list[str] = []
    followups = FollowUps({TOPIC: calls.append}, settle=0, busy=lambda: True)
    followups(_event("a.myshopify.com"), PROCESSED)
    followups.stop(timeout=10)
    assert calls == ["a.myshopify.com"]
