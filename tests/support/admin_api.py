"""The Admin API client of the product, wired to a running fake Shopify (billing, sync tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.fake_shopify import FakeShopify, State, running
from tests.support.fake_shopify.admin import shop_gid
from tests.support.issued_tokens import IssuedTokens
from timedify.settings import Settings
from timedify.shopify.admin import AdminClient

__all__ = ["AdminApi", "admin_api", "shop_gid", "subscription"]


@dataclass
class Clock:
    """A clock only `sleep` advances, shared by the client and the fake's buckets."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class AdminApi:
    fake: FakeShopify
    tokens: IssuedTokens
    client: AdminClient
    clock: Clock
    settings: Settings  # pointed at the fake

    def new_client(self, **overrides: Any) -> AdminClient:
        """Another client on the fake, with some settings changed (retries, timeouts)."""
        settings = self.settings.model_copy(update=overrides)
        return AdminClient(settings, self.tokens, sleep=self.clock.sleep, clock=self.clock)

    @property
    def state(self) -> Any:
        """The fake's Admin API state (subscriptions, scopes, metafields, requests, faults)."""
        return self.fake.state.admin

    def operations(self) -> list[str]:
        return [op for _shop, op, _status, _note in self.state.requests]


@contextmanager
def admin_api(settings: Settings) -> Iterator[AdminApi]:
    """A fake Shopify and an `AdminClient` for `settings` pointed at it."""
    clock = Clock()
    state = State()
    state.admin.clock = clock
    with running(state) as fake:
        tokens = IssuedTokens(state)
        pointed = settings.model_copy(update={"shopify_api_origin": fake.origin})
        client = AdminClient(pointed, tokens, sleep=clock.sleep, clock=clock)
        yield AdminApi(fake, tokens, client, clock, pointed)


def subscription(
    number: int = 1,
    *,
    status: str = "ACTIVE",
    test: bool = False,
    ends_in: timedelta | None = timedelta(days=20),
    name: str = "Timedify Pro",
) -> dict[str, Any]:
    """An `activeSubscriptions` node as the Admin API returns it."""
    end = None if ends_in is None else (datetime.now(UTC) + ends_in).isoformat()
    return {
        "id": f"gid://shopify/AppSubscription/{number}",
        "name": name,
        "status": status,
        "test": test,
        "currentPeriodEnd": end,
    }
