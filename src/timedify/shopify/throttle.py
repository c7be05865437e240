"""Cost-based throttling of the GraphQL Admin API (SPEC S6).

Shopify gives every app and shop a leaky bucket of query points: a query is refused (`THROTTLED`)
when its *requested* cost exceeds the points available, which restore at a fixed rate. Each
answer's `extensions.cost.throttleStatus` says where the bucket stood; from that and the time it
was seen we estimate the points available now, and wait before sending a query we would not
afford instead of having it refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The requested cost assumed for an operation not seen yet: higher than any query we send asks
# for (they ask 1-20 points), so the first call of an operation never meets a throttle.
DEFAULT_COST = 100.0


@dataclass
class Bucket:
    """One shop's bucket as last seen, plus what we spent since."""

    maximum: float
    available: float
    restore_rate: float
    seen_at: float

    def available_at(self, now: float) -> float:
        restored = max(0.0, now - self.seen_at) * self.restore_rate
        return min(self.maximum, self.available + restored)

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until `cost` points are available (0: now). A cost above the bucket's maximum
        can never be afforded; it waits for a full bucket and Shopify decides."""
        missing = min(cost, self.maximum) - self.available_at(now)
        if missing <= 0:
            return 0.0
        return missing / self.restore_rate if self.restore_rate > 0 else float("inf")

    def spend(self, cost: float, now: float) -> None:
        self.available = max(0.0, self.available_at(now) - cost)
        self.seen_at = now


@dataclass(frozen=True)
class Cost:
    """`extensions.cost` of one answer (None where Shopify did not say)."""

    requested: float | None
    actual: float | None
    available: float | None


class Throttle:
    """Each shop's bucket and each operation's last requested cost; safe across threads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}
        self._costs: dict[str, float] = {}

    def cost_of(self, operation: str, given: float | None = None) -> float:
        """What `operation` will ask for: the caller's figure, else what it asked last time."""
        if given is not None:
            return given
        with self._lock:
            return self._costs.get(operation, DEFAULT_COST)

    def reserve(self, shop: str, cost: float) -> float:
        """0 when `cost` is affordable now (and then taken from the estimate, so that threads
        sending at once do not all count the same points), else the seconds to wait first."""
        with self._lock:
            bucket = self._buckets.get(shop)
            if bucket is None:
                return 0.0  # never seen: Shopify's answer will tell us
            now = self._clock()
            wait = bucket.wait_for(cost, now)
            if wait == 0:
                bucket.spend(cost, now)
            return wait

    def wait_for(self, shop: str, cost: float) -> float | None:
        """Seconds until `cost` is affordable, None when the shop's bucket is unknown."""
        with self._lock:
            bucket = self._buckets.get(shop)
            return None if bucket is None else bucket.wait_for(cost, self._clock())

    def observe(self, shop: str, operation: str, extensions: Any) -> Cost:
        """Take in an answer's `extensions`: the bucket as Shopify saw it, the operation's cost."""
        cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
        if not isinstance(cost, Mapping):
            return Cost(None, None, None)
        requested = _number(cost.get("requestedQueryCost"))
        status = cost.get("throttleStatus")
        bucket = _bucket(status, self._clock()) if isinstance(status, Mapping) else None
        with self._lock:
            if requested is not None:
                self._costs[operation] = requested
            if bucket is not None:
                self._buckets[shop] = bucket
        available = bucket.available if bucket is not None else None
        return Cost(requested, _number(cost.get("actualQueryCost")), available)


def _bucket(status: Mapping[str, Any], now: float) -> Bucket | None:
    maximum = _number(status.get("maximumAvailable"))
    available = _number(status.get("currentlyAvailable"))
    rate = _number(status.get("restoreRate"))
    if maximum is None or available is None or rate is None:
        return None
    return Bucket(maximum, available, rate, now)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
