"""What the fake Shopify knows: the app's credentials, the installed shops and issued tokens."""

from __future__ import annotations

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
    admin: AdminApi = field(default_factory=AdminApi)
