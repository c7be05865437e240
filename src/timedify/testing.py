"""Shopify, faked: signed webhook requests and sample payloads.

Used by the tests, by `timedify send-webhook` and by `timedify smoke` - the one place that knows
how to make a request Shopify would make - and by operators trying the embedded page locally
(`session_token`, `admin_host`).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson

from timedify.ingest import webhooks

API_VERSION = "2025-10"


def sample_payload(
    topic: str, shop: str, *, customer_id: int = 191167, at: datetime | None = None
) -> dict[str, Any]:
    """A payload shaped like the one Shopify sends for `topic` (documentation examples), dated
    `at` (`updated_at`, default now)."""
    now = (at or datetime.now(UTC)).isoformat()
    shop_id = 548380009
    customer = {"id": customer_id, "email": "john@example.com", "phone": "+15556251199"}
    payloads: dict[str, dict[str, Any]] = {
        "app/uninstalled": {"id": shop_id, "myshopify_domain": shop, "domain": shop},
        "app/scopes_update": {
            "id": shop_id,
            "previous": ["read_products"],
            "current": ["read_products", "write_products"],
            "updated_at": now,
            "created_at": now,
        },
        "app_subscriptions/update": {
            "app_subscription": {
                "admin_graphql_api_id": "gid://shopify/AppSubscription/1029266954",
                "name": "Premium",
                "status": "ACTIVE",
                "admin_graphql_api_shop_id": f"gid://shopify/Shop/{shop_id}",
                "created_at": now,
                "updated_at": now,
                "currency": "USD",
                "capped_amount": "20.0",
            }
        },
        "customers/data_request": {
            "shop_id": shop_id,
            "shop_domain": shop,
            "orders_requested": [299938, 280263],
            "customer": customer,
            "data_request": {"id": 9999},
        },
        "customers/redact": {
            "shop_id": shop_id,
            "shop_domain": shop,
            "customer": customer,
            "orders_to_redact": [299938, 280263],
        },
        "shop/redact": {"shop_id": shop_id, "shop_domain": shop},
    }
    return payloads.get(topic, {"id": shop_id})


@dataclass(frozen=True)
class SignedWebhook:
    """A request as Shopify would send it: exact body bytes and headers."""

    topic: str
    body: bytes
    headers: dict[str, str]

    @property
    def webhook_id(self) -> str:
        return self.headers["X-Shopify-Webhook-Id"]

    def path(self) -> str:
        return f"/webhooks/{self.topic}"


def signed_webhook(
    topic: str,
    shop: str,
    secret: str | bytes,
    *,
    payload: dict[str, Any] | bytes | None = None,
    webhook_id: str | None = None,
    event_id: str | None = None,
    triggered_at: datetime | None = None,
    include_shop_header: bool = True,
) -> SignedWebhook:
    """Build and sign one webhook delivery; the sample payload is dated `triggered_at` too."""
    if payload is None:
        payload = sample_payload(topic, shop, at=triggered_at)
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    key = secret.encode() if isinstance(secret, str) else secret
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": webhooks.sign(body, key),
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": (triggered_at or datetime.now(UTC)).isoformat(),
        "X-Shopify-Api-Version": API_VERSION,
    }
    if include_shop_header:
        headers["X-Shopify-Shop-Domain"] = shop
    return SignedWebhook(topic, body, headers)


def session_token(
    shop: str,
    *,
    secret: str | bytes,
    api_key: str,
    exp_in: float = 60,
    nbf_in: float = 0,
    user_id: str = "42",
    session_id: str | None = None,
    dest: str | None = None,
    iss: str | None = None,
    audience: str | list[str] | None = None,
    algorithm: str = "HS256",
    omit: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """A session token as App Bridge hands it to the embedded page (SPEC S2).

    Valid for `shop` by default; the keyword arguments break it on purpose: another `dest` or
    `iss`, an `audience` other than `api_key`, a negative `exp_in` (expired) or positive
    `nbf_in` (not yet valid), claims left out (`omit`), another `algorithm`.
    """
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": iss if iss is not None else f"https://{shop}/admin",
        "dest": dest if dest is not None else f"https://{shop}",
        "aud": audience if audience is not None else api_key,
        "sub": user_id,
        "exp": int(issued + exp_in),
        "nbf": int(issued + nbf_in),
        "iat": int(issued),
        "jti": str(uuid.uuid4()),
        "sid": session_id or str(uuid.uuid4()),
    }
    claims.update(extra or {})
    for name in omit:
        claims.pop(name, None)
    key = secret.encode() if isinstance(secret, str) else secret
    return jwt.encode(claims, key, algorithm=algorithm)


def admin_host(shop: str) -> str:
    """The `host` parameter the admin adds to the app URL: base64 of the shop's admin path."""
    store = shop.removesuffix(".myshopify.com")
    encoded = base64.urlsafe_b64encode(f"admin.shopify.com/store/{store}".encode())
    return encoded.decode().rstrip("=")
