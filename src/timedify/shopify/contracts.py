"""What the pieces of the Shopify half promise each other: token sources, billing state, errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ShopifyError(Exception):
    """Base of every failure talking to Shopify. `error_class` is what the log line carries."""

    error_class = "shopify"


class ShopifyAuthError(ShopifyError):
    """Shopify refused our credentials or a token (S3, S4, S6)."""

    error_class = "shopify_auth"


class InvalidSubjectToken(ShopifyAuthError):
    """Token exchange refused the session token: the page must fetch a fresh one (S3)."""


class NeedsReauthentication(ShopifyAuthError):
    """The shop has no usable token; the next admin load exchanges again (S4)."""


class ShopNotInstalled(ShopifyAuthError):
    """The shop uninstalled the app: never refreshed, never called (S4, S8)."""


class ShopifyUnavailable(ShopifyError):
    """Shopify did not answer usefully after the bounded retries (429, 5xx, network)."""

    error_class = "shopify_unavailable"


class TokenSource(Protocol):
    """Hands out a shop's current offline access token, refreshing it when due (S4)."""

    def access_token(self, shop: str) -> str:
        """A token valid for a minute more; raises NeedsReauthentication or ShopNotInstalled."""
        ...

    def after_unauthorized(self, shop: str) -> str:
        """After a 401 from the Admin API: refresh once, or raise NeedsReauthentication."""
        ...


class TokenExchanger(Protocol):
    """Turns a verified session token into a stored expiring offline token (S3)."""

    def ensure_offline_token(self, shop: str, id_token: str) -> None:
        """No-op while the shop has a usable token; else InvalidSubjectToken or ShopifyAuthError."""
        ...


@dataclass(frozen=True)
class SubscriptionState:
    """A shop's billing state as read from `currentAppInstallation` (S7)."""

    active: bool
    name: str | None
    status: str | None
    current_period_end: datetime | None
    test: bool
    checked_at: datetime


class BillingReader(Protocol):
    """Reads (and mirrors) a shop's subscription state; `max_age_seconds` allows a cached answer."""

    def subscription_state(self, shop: str, *, max_age_seconds: float = 0) -> SubscriptionState: ...
