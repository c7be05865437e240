"""What Shopify sends: topics, paths, headers and the HMAC signature (SPEC W1, W2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import UTC, datetime

TOPICS: tuple[str, ...] = (
    "app/uninstalled",
    "app/scopes_update",
    "app_subscriptions/update",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
)
# For membership tests on the hot path (the app handles these; any other topic is stored
# as ignored and counted as "other").
HANDLED_TOPICS = frozenset(TOPICS)
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})

# Per-topic paths, plus the alias some app configurations use for subscription updates.
TOPIC_PATHS: dict[str, str] = {f"/webhooks/{topic}": topic for topic in TOPICS}
TOPIC_PATHS["/webhooks/app/subscriptions_update"] = "app_subscriptions/update"
UNIFIED_PATH = "/webhooks"

HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
EVENT_ID_HEADER = "x-shopify-event-id"
SHOP_HEADER = "x-shopify-shop-domain"
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"
API_VERSION_HEADER = "x-shopify-api-version"

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$")
_TOPIC = re.compile(r"^[a-z0-9_]{1,49}/[a-z0-9_]{1,50}$")  # fits the 100-char column
_DIGEST_SIZE = hashlib.sha256().digest_size


def sign(body: bytes, secret: bytes) -> str:
    """The value Shopify puts in `X-Shopify-Hmac-Sha256` for `body`."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def verify_signature(body: bytes, header: str | bytes | None, secrets: Iterable[bytes]) -> bool:
    """True when `header` is a valid signature of the exact `body` under one of `secrets`."""
    return SignatureVerifier(secrets)(body, header)


class SignatureVerifier:
    """Checks `X-Shopify-Hmac-Sha256` against every configured secret (W1), in constant time.

    The header is decoded first so the comparison is between two 32-byte digests: equal lengths,
    so `compare_digest` runs in constant time; a header of the wrong shape is simply invalid.
    The keyed HMAC state of each secret is built once and copied per request (cheaper than
    keying OpenSSL's one-shot HMAC again for every webhook).
    """

    def __init__(self, secrets: Iterable[bytes]) -> None:
        self._keyed = [hmac.new(secret, digestmod=hashlib.sha256) for secret in secrets]

    def __call__(self, body: bytes, header: str | bytes | None) -> bool:
        """`header` as received (bytes, from the ASGI scope) or as text."""
        if not header:
            return False
        try:
            provided = binascii.a2b_base64(header.strip(), strict_mode=True)
        except (binascii.Error, ValueError):
            return False
        if len(provided) != _DIGEST_SIZE:
            return False
        valid = False
        for keyed in self._keyed:
            # Every secret is checked, so the time taken does not tell which one matched.
            mac = keyed.copy()
            mac.update(body)
            valid |= hmac.compare_digest(mac.digest(), provided)
        return valid


def valid_shop_domain(value: str | None) -> bool:
    """A `*.myshopify.com` domain as Shopify issues them (lower case, no scheme, no path)."""
    return bool(value) and _SHOP_DOMAIN.fullmatch(value or "") is not None


def valid_topic(value: str | None) -> bool:
    return bool(value) and _TOPIC.fullmatch(value or "") is not None


def parse_timestamp(value: str | None) -> datetime | None:
    """`X-Shopify-Triggered-At` as a datetime, or None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return None
        # In UTC, as stored: `9999-12-31T23:59:59-14:00` overflows here, not in the database
        # (where it failed the whole commit batch it shared with other webhooks).
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# Reserved for `timedify smoke`: its events are stored and processed like real ones, then
# removed, and are never counted in statistics.
SYNTHETIC_SHOP_DOMAIN = "timedify-synthetic-smoke.myshopify.com"


def is_synthetic(shop_domain: str) -> bool:
    """An event of `timedify smoke`'s reserved shop (stored flagged, counted apart: O7)."""
    return shop_domain == SYNTHETIC_SHOP_DOMAIN
