"""A `TokenSource` over tokens the fake Shopify issued, for tests of the Admin API's callers.

The product's own token source (exchange, refresh, encryption at rest) is tested on its own;
this one hands out what `issue` put into the fake's `State`, and records `after_unauthorized`.
"""

from __future__ import annotations

import secrets

from tests.support.fake_shopify.state import AccessGrant, State
from timedify.shopify.contracts import NeedsReauthentication


class IssuedTokens:
    """`access_token` returns the shop's issued token; `after_unauthorized` issues a new one
    when `renew` (else returns a token Shopify never issued)."""

    def __init__(self, state: State, *, renew: bool = True) -> None:
        self.state = state
        self.renew = renew
        self.current: dict[str, str] = {}
        self.unauthorized: list[str] = []

    def issue(self, shop: str, *, install: bool = True) -> str:
        token = "shpat_" + secrets.token_hex(16)
        with self.state.lock:
            self.state.access_tokens[token] = AccessGrant(shop, self.state.scope, None)
            if install:
                self.state.installed.add(shop)
        self.current[shop] = token
        return token

    def revoke(self, shop: str) -> None:
        """Shopify forgets the shop's token (as after a secret rotation or expiry)."""
        with self.state.lock:
            self.state.access_tokens.pop(self.current[shop], None)

    def access_token(self, shop: str) -> str:
        if shop not in self.current:
            raise NeedsReauthentication(f"{shop}: no token")
        return self.current[shop]

    def after_unauthorized(self, shop: str) -> str:
        self.unauthorized.append(shop)
        if self.renew:
            return self.issue(shop, install=False)
        self.current[shop] = "shpat_never_issued"
        return self.current[shop]
