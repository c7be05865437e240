"""What the fake Shopify knows: the app's credentials, the installed shops and issued tokens."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AccessGrant:
    """An access token Shopify issued: for which shop, with which scopes, until when (epoch s)."""

    shop: str
    scope: str
    expires_at: float | None


@dataclass
class RefreshGrant:
    """A refresh token and what became of it.

    Used once, it is rotated: the pair it was exchanged for is kept in `answered`, and the same
    token presented once more (the app lost the answer) gets that same pair back. After that,
    or once the new refresh token has been used, it answers `invalid_grant`.
    """

    shop: str
    expires_at: float
    answered: tuple[str, str] | None = None
    replays_left: int = 1


@dataclass
class AdminApi:
    """The Admin API's side of the fake (admin.py): installations, buckets, fault knobs."""

    # Per shop: the `activeSubscriptions` nodes and granted scopes (default: State.scope).
    subscriptions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scopes: dict[str, list[str]] = field(default_factory=dict)
    # Every `metafieldsSet` input, in order, and the current values by (shop, namespace.key).
    metafield_writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    metafields: dict[tuple[str, str], str] = field(default_factory=dict)
    # The leaky bucket of each shop: maximum, restore rate per second, requested cost by
    # operation name (else `default_cost`); the clock is shared with the client in tests.
    maximum: float = 1000.0
    restore_rate: float = 50.0
    costs: dict[str, float] = field(default_factory=dict)
    default_cost: float = 10.0
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # shop -> (level, at)
    # Faults: the next N requests answer 429 (with this Retry-After) or this 5xx status; every
    # answer carries X-Shopify-API-Deprecated-Reason when set.
    next_429: int = 0
    retry_after: str | None = "0.5"
    next_5xx: int = 0
    status_5xx: int = 503
    deprecated_reason: str | None = None
    # What was asked: (shop or None, operationName, HTTP status, "THROTTLED"/"ok"/...).
    requests: list[tuple[str | None, str, int, str]] = field(default_factory=list)


@dataclass
class State:
    """Shared by the OAuth endpoint (which issues tokens) and the Admin API (which checks them)."""

    client_id: str = "test-api-key"
    client_secret: str = "test-api-secret"
    scope: str = "write_themes,read_themes"
    access_tokens: dict[str, AccessGrant] = field(default_factory=dict)
    installed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # OAuth (oauth.py): refresh tokens by value, migrated non-expiring tokens, every request
    # to the token endpoint by kind ("token_exchange", "refresh", "migration", "refused").
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    migrated: dict[str, tuple[str, str]] = field(default_factory=dict)
    token_requests: list[str] = field(default_factory=list)
    access_ttl: float = 3600.0
    refresh_ttl: float = 90 * 86400.0
    # Fault injection: the next N answers are 503; the next N requests are processed (tokens
    # issued, state changed) and then the connection is dropped before the answer arrives.
    fail_next: int = 0
    drop_next: int = 0
    # Seconds each answer waits before it is sent (makes concurrent requests overlap).
    answer_delay: float = 0.0

    def issue_access(self, shop: str, *, expiring: bool = True) -> str:
        """A new access token for `shop`, valid at the Admin API (call with `lock` held)."""
        token = "shpat_" + secrets.token_hex(16)
        expires_at = time.time() + self.access_ttl if expiring else None
        self.access_tokens[token] = AccessGrant(shop, self.scope, expires_at)
        self.installed.add(shop)
        return token

    def issue_refresh(self, shop: str) -> str:
        token = "shprt_" + secrets.token_hex(16)
        self.refresh_tokens[token] = RefreshGrant(shop, time.time() + self.refresh_ttl)
        return token

    def uninstall(self, shop: str) -> None:
        """The merchant removed the app: every token of the shop stops working."""
        with self.lock:
            self.installed.discard(shop)
            for token in [t for t, g in self.access_tokens.items() if g.shop == shop]:
                del self.access_tokens[token]
            for token in [t for t, g in self.refresh_tokens.items() if g.shop == shop]:
                del self.refresh_tokens[token]

    def count(self, kind: str) -> int:
        with self.lock:
            return self.token_requests.count(kind)

    admin: AdminApi = field(default_factory=AdminApi)
