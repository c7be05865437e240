"""What the fake Shopify knows: the app's credentials, the installed shops and issued tokens."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field


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
