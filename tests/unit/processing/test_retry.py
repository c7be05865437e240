"""P2: the retry schedule as a table of cases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from timedify.processing.retry import RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FixedRandom(random.Random):
    """rng.random() always returns `value`: 0.0 = no jitter, ~1.0 = the most jitter."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("policy", "attempt", "rnd", "expected"),
    [
        # exponential: base * 2**(attempt-1)
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 1, 0.0, 2.0),
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 2, 0.0, 4.0),
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 7, 0.0, 128.0),
        # jitter shortens by up to the fraction, never lengthens
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 3, 0.5, 8.0 * 0.9),
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 3, 1.0, 8.0 * 0.8),
        # capped
        (RetryPolicy(max_attempts=30, base=2, cap=60, jitter=0.0), 10, 0.7, 60.0),
        (RetryPolicy(max_attempts=500, base=2, cap=60, jitter=0.0), 400, 0.0, 60.0),
        # give up once max_attempts attempts were made
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 8, 0.0, None),
        (RetryPolicy(max_attempts=8, base=2, cap=3600, jitter=0.2), 9, 0.0, None),
        (RetryPolicy(max_attempts=1, base=2, cap=3600, jitter=0.2), 1, 0.0, None),
        (RetryPolicy(max_attempts=3, base=0.5, cap=10, jitter=0.0), 2, 0.0, 1.0),
    ],
)
def test_decide(policy: RetryPolicy, attempt: int, rnd: float, expected: float | None) -> None:
    decision = policy.decide(attempt, NOW, FixedRandom(rnd))
    if expected is None:
        assert decision is None
    else:
        assert decision == NOW + timedelta(seconds=expected)


def test_jitter_spreads_retries_within_bounds() -> None:
    policy = RetryPolicy(max_attempts=8, base=10, cap=3600, jitter=0.5)
    rng = random.Random(42)
    delays = {policy.delay(2, rng) for _ in range(200)}
    assert all(d is not None and 10 <= d <= 20 for d in delays)
    assert len(delays) > 100  # not all the same: failures of one moment do not retry together
