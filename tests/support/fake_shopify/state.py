"""What the fake Shopify knows: the app's credentials, the installed shops and issued tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class AccessGrant:
    """An access token Shopify issued: for which shop, with which scopes, until when (epoch s)."""

    shop: str
    scope: str
    expires_at: float | None


@dataclass
class State:
    """Shared by the OAuth endpoint (which issues tokens) and the Admin API (which checks them)."""

    client_id: str = "test-api-key"
    client_secret: str = "test-api-secret"
    scope: str = "write_themes,read_themes"
    access_tokens: dict[str, AccessGrant] = field(default_factory=dict)
    installed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
