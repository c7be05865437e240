"""The leaky-bucket estimate behind the Admin API client's throttling (S6), without I/O."""

from __future__ import annotations

import httpx
import pytest

from timedify.shopify.admin import retry_after
from timedify.shopify.throttle import DEFAULT_COST, Bucket, Throttle


def status(available: float, maximum: float = 1000, rate: float = 50) -> dict[str, object]:
    throttle = {"maximumAvailable": maximum, "currentlyAvailable": available, "restoreRate": rate}
    return {"cost": {"requestedQueryCost": 12, "actualQueryCost": 10, "throttleStatus": throttle}}


@pytest.mark.parametrize(
    ("available", "elapsed", "cost", "wait"),
    [
        (100, 0, 50, 0.0),  # affordable
        (10, 0, 50, 0.8),  # 40 missing at 50/s
        (10, 0.4, 50, 0.4),  # half of it restored meanwhile
        (990, 10, 50, 0.0),  # never above the maximum
        (0, 0, 5000, 20.0),  # above the maximum: wait for a full bucket
    ],
)
def test_wait_for(available: float, elapsed: float, cost: float, wait: float) -> None:
    bucket = Bucket(1000, available, 50, seen_at=0)
    assert bucket.wait_for(cost, now=elapsed) == pytest.approx(wait)


def test_an_unknown_shop_is_never_held_back() -> None:
    assert Throttle(lambda: 0).reserve("a.myshopify.com", 10_000) == 0


def test_reserving_takes_the_points_so_concurrent_callers_do_not_share_them() -> None:
    throttle = Throttle(lambda: 0)
    throttle.observe("a.myshopify.com", "Op", status(available=60))
    assert throttle.reserve("a.myshopify.com", 50) == 0
    assert throttle.reserve("a.myshopify.com", 50) == pytest.approx(0.8)


def test_an_operation_costs_what_it_asked_last_time() -> None:
    throttle = Throttle(lambda: 0)
    assert throttle.cost_of("Op") == DEFAULT_COST
    cost = throttle.observe("a.myshopify.com", "Op", status(available=500))
    assert (cost.requested, cost.actual, cost.available) == (12, 10, 500)
    assert throttle.cost_of("Op") == 12
    assert throttle.cost_of("Op", 99) == 99


def test_answers_without_cost_change_nothing() -> None:
    throttle = Throttle(lambda: 0)
    assert throttle.observe("a.myshopify.com", "Op", None).requested is None
    assert (
        throttle.observe("a.myshopify.com", "Op", {"cost": {"throttleStatus": {}}}).available
        is None
    )
    assert throttle.wait_for("a.myshopify.com", 10) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0.5", 0.5),
        ("2", 2.0),
        ("-1", None),
        ("nan", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_retry_after(header: str, seconds: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after(response) == seconds
