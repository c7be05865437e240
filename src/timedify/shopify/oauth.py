"""Shopify's token endpoint (S3, S4): token exchange, refresh and the migration exchange.

`POST {SHOPIFY_API_ORIGIN}/admin/oauth/access_token` with bounded timeouts. A 429, a 5xx or a
network error is retried a bounded number of times with backoff and jitter; every grant here is
safe to send twice (an id token can be exchanged again while it is valid, Shopify answers a
repeated refresh or migration of the same token with the same pair), which is how a lost answer
is recovered. Answers are mapped to the errors of `contracts`; nothing here logs or raises a
token.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from timedify.ingest.webhooks import valid_shop_domain
from timedify.logs import identifier
from timedify.models import utcnow
from timedify.settings import Settings
from timedify.shopify.contracts import InvalidSubjectToken, ShopifyAuthError, ShopifyUnavailable

# Grant and token type names of RFC 8693 and Shopify (names, not secrets).
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - an OAuth URN  # nosec B105
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - an OAuth URN  # nosec B105
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105 - an OAuth URN  # nosec B105
# Connect and read bounds: the token endpoint answers in well under a second, and a refresh may
# hold the shop's row lock (SQLite: the database's write lock) while it waits.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)


class InvalidGrant(ShopifyAuthError):
    """Shopify refused the refresh token (or the token to migrate): re-authentication needed."""


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint issued; `expires_at` None is a non-expiring token."""

    access_token: str
    scope: str
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None

    def __repr__(self) -> str:  # a grant in a traceback or a debugger shows no token
        return f"TokenGrant(scope={self.scope!r}, expires_at={self.expires_at!r})"


class OAuthClient:
    """A sync client for the token endpoint; thread-safe (one httpx pool)."""

    def __init__(
        self,
        settings: Settings,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._origin = settings.shopify_api_origin
        self._credentials = {
            "client_id": settings.shopify_api_key,
            "client_secret": settings.shopify_api_secret.get_secret_value(),
        }
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
        self._transport = transport
        self._http: httpx.Client | None = None  # opened at the first request
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=TIMEOUT, transport=self._transport, follow_redirects=False
                )
            return self._http

    def token_exchange(self, shop: str, id_token: str) -> TokenGrant:
        """An expiring offline token for a verified session token (S3)."""
        return self._grant(
            shop,
            "token exchange",
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": id_token,
                "subject_token_type": ID_TOKEN,
                "requested_token_type": OFFLINE_TOKEN,
                "expiring": 1,
            },
        )

    def refresh(self, shop: str, refresh_token: str) -> TokenGrant:
        """A new pair for a refresh token (S4); the old refresh token is used up."""
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._grant(shop, "token refresh", body)

    def migrate(self, shop: str, old_token: str) -> TokenGrant:
        """Shopify's one-time exchange of a non-expiring offline token for an expiring one."""
        return self._grant(
            shop,
            "token migration",
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": old_token,
                "subject_token_type": OFFLINE_TOKEN,
                "requested_token_type": OFFLINE_TOKEN,
                "expiring": 1,
            },
        )

    def url(self, shop: str) -> str:
        if not valid_shop_domain(shop):
            raise ShopifyAuthError("not a *.myshopify.com shop domain")
        return self._origin.replace("{shop}", shop) + "/admin/oauth/access_token"

    def _grant(self, shop: str, what: str, body: dict[str, Any]) -> TokenGrant:
        url = self.url(shop)
        payload = {**self._credentials, **body}
        for attempt in range(1, self._attempts + 1):
            sent_at = utcnow()
            try:
                response = self._client().post(
                    url, json=payload, headers={"Accept": "application/json"}
                )
            except httpx.HTTPError as exc:
                problem = f"{what} for {shop}: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    return _parse(response, sent_at, f"{what} for {shop}")
                if response.status_code != 429 and response.status_code < 500:
                    raise _refusal(response, f"{what} for {shop}")
                problem = f"{what} for {shop}: HTTP {response.status_code}"
            if attempt < self._attempts:
                time.sleep(self._backoff * 2 ** (attempt - 1) * (0.5 + self._rng.random()))
        raise ShopifyUnavailable(f"{problem} (after {self._attempts} attempts)")


def _refusal(response: httpx.Response, context: str) -> ShopifyAuthError:
    """The error for a 4xx answer; only Shopify's error code is kept (it names no token)."""
    code = _error_code(response)
    message = f"{context}: refused, HTTP {response.status_code} {code or 'without error code'}"
    if code == "invalid_subject_token":
        return InvalidSubjectToken(message)
    if code == "invalid_grant":
        return InvalidGrant(message)
    return ShopifyAuthError(message)


def _error_code(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("error") if isinstance(data, dict) else None
    return identifier(code) if isinstance(code, str) else None


def _parse(response: httpx.Response, sent_at: datetime, context: str) -> TokenGrant:
    """The grant of a 200; expiries count from when the request was sent (never too late)."""
    try:
        data = response.json()
        token = data["access_token"]
        if not isinstance(token, str) or not token:
            raise ValueError
        return TokenGrant(
            access_token=token,
            scope=str(data.get("scope") or ""),
            expires_at=_after(sent_at, data.get("expires_in")),
            refresh_token=data.get("refresh_token") or None,
            refresh_token_expires_at=_after(sent_at, data.get("refresh_token_expires_in")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ShopifyAuthError(f"{context}: malformed answer from Shopify") from None


def _after(start: datetime, seconds: Any) -> datetime | None:
    if seconds is None:
        return None
    return start + timedelta(seconds=float(seconds))
