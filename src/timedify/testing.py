"""Shopify, faked: signed webhook requests and sample payloads.

Used by the tests, by `timedify send-webhook` and by `timedify smoke` - the one place that knows
how to make a request Shopify would make.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from timedify.ingest import webhooks

API_VERSION = "2025-10"


def sample_payload(topic: str, shop: str, *, customer_id: int = 191167) -> dict[str, Any]:
    """A payload shaped like the one Shopify sends for `topic` (documentation examples)."""
    now = datetime.now(UTC).isoformat()
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
    """Build and sign one webhook delivery."""
    if payload is None:
        payload = sample_payload(topic, shop)
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
