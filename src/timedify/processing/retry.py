"""Retries as data (SPEC P2): a frozen policy that answers "retry at T" or "give up"."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from timedify.settings import Settings


class Permanent(Exception):
    """A failure no retry can cure (a payload that lacks what its topic needs): the event
    becomes a dead letter at its first attempt, with the reason, instead of being retried."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, for at most `max_attempts` attempts in total.

    The delay after attempt n is `min(cap, base * 2**(n-1))`, shortened by up to `jitter` (a
    fraction) at random so that events which failed together do not all come back together.
    """

    max_attempts: int = 8
    base: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy configured by `RETRY_MAX_ATTEMPTS`, `RETRY_BASE_SECONDS`, ..."""
        return cls(
            max_attempts=settings.retry_max_attempts,
            base=settings.retry_base_seconds,
            cap=settings.retry_max_seconds,
        )

    def delay(self, attempt: int, rng: random.Random) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based), None to give up."""
        if attempt >= self.max_attempts:
            return None
        # 2**n overflows float for absurd attempt counts; the cap is reached long before.
        raw = self.cap if attempt > 60 else min(self.cap, self.base * 2 ** (attempt - 1))
        return raw * (1.0 - self.jitter * rng.random())

    def decide(
        self, attempt: int, now: datetime, rng: random.Random, error: Exception | None = None
    ) -> datetime | None:
        """When to try again after failed attempt `attempt` (which raised `error`), or None:
        give up (dead letter) - at once when the error is `Permanent`."""
        if isinstance(error, Permanent):
            return None
        seconds = self.delay(attempt, rng)
        return None if seconds is None else now + timedelta(seconds=seconds)
