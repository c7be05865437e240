"""Our webhook signature check agrees with Shopify's own library (`shopifyapp`, a dev
dependency used as the reference): what it accepts we accept, what it refuses we refuse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from shopify_app import ShopifyApp

from timedify.ingest import webhooks
from timedify.testing import signed_webhook

SECRET, OLD = "shpss_current_0123456789abcdef", "shpss_previous_0123456789abcdef"
REFERENCE = ShopifyApp(client_id="key", client_secret=SECRET, old_client_secret=OLD)
SHOP = "demo-shop.myshopify.com"
BODIES = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=30), max_size=5)


def _both(body: bytes, headers: dict[str, str]) -> tuple[bool, bool]:
    ours = webhooks.verify_signature(
        body, headers["X-Shopify-Hmac-Sha256"], [SECRET.encode(), OLD.encode()]
    )
    theirs = REFERENCE.verify_webhook_req(
        {"method": "POST", "headers": headers, "url": "https://app/webhooks", "body": body.decode()}
    ).ok
    return ours, theirs


@settings(max_examples=60, deadline=None)
@given(payload=BODIES, with_old=st.booleans())
def test_signed_with_either_secret_both_accept(payload: dict[str, str], with_old: bool) -> None:
    hook = signed_webhook("app/uninstalled", SHOP, OLD if with_old else SECRET, payload=payload)
    assert _both(hook.body, dict(hook.headers)) == (True, True)


@settings(max_examples=60, deadline=None)
@given(payload=BODIES, extra=st.text(min_size=1, max_size=5))
def test_a_changed_body_or_another_secret_both_refuse(payload: dict[str, str], extra: str) -> None:
    hook = signed_webhook("app/uninstalled", SHOP, SECRET, payload=payload)
    tampered = hook.body + extra.encode()
    assert _both(tampered, dict(hook.headers)) == (False, False)
    other = signed_webhook("app/uninstalled", SHOP, "shpss_someone_else", payload=payload)
    assert _both(other.body, dict(other.headers)) == (False, False)
