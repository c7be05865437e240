"""URLs and headers of the embedded page (SPEC S1): what the admin sends, where links go.

Pure functions of validated values, so the rules can be tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import quote, urlencode

from starlette.requests import Request

ADMIN_ORIGIN = "https://admin.shopify.com"
APP_BLOCK_HANDLE = "a-timed-start"
_MAX_HOST_PARAM = 512
_NOT_CARRIED = frozenset({"id_token", "shopify-reload"})
# The admin `host` parameter decodes to `admin.shopify.com/store/{store}` (or the legacy
# `{shop}.myshopify.com/admin`): Shopify's hosts only.
_ADMIN_HOST = re.compile(r"^(?:[a-z0-9-]+\.)*(?:myshopify\.com|shopify\.com)$")


def valid_host(value: str | None) -> bool:
    """The `host` query parameter: base64 (either alphabet, padding optional) of a Shopify host."""
    if not value or len(value) > _MAX_HOST_PARAM:
        return False
    padded = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return _ADMIN_HOST.fullmatch(decoded.split("/", 1)[0].lower()) is not None


def frame_ancestors(shop: str | None) -> str:
    """The CSP of an HTML answer: framed by the shop's admin, or by nobody."""
    if shop is None:
        return "frame-ancestors 'none';"
    return f"frame-ancestors https://{shop} {ADMIN_ORIGIN};"


def bounce_location(request: Request, bounce_path: str) -> str:
    """The bounce page URL for this request: its query without `id_token`, plus where to return.

    `shopify-reload` is a path on this origin (never a URL taken from the request), so the
    bounce cannot be turned into a redirect elsewhere.
    """
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in _NOT_CARRIED]
    reload = request.url.path + (f"?{urlencode(query)}" if query else "")
    return f"{bounce_path}?{urlencode([*query, ('shopify-reload', reload)])}"


def admin_app_url(shop: str, api_key: str) -> str:
    """The app inside the shop's admin, for a request that arrived outside of it."""
    return f"{ADMIN_ORIGIN}/store/{_store(shop)}/apps/{quote(api_key, safe='')}"


def plan_page_url(shop: str, app_handle: str) -> str:
    """Shopify managed pricing's plan selection page for the shop."""
    return f"{ADMIN_ORIGIN}/store/{_store(shop)}/charges/{app_handle}/pricing_plans"


def theme_editor_url(shop: str, api_key: str) -> str:
    """The theme editor on the home page, adding the app block in a new Apps section."""
    query = urlencode(
        {
            "template": "index",
            "addAppBlockId": f"{api_key}/{APP_BLOCK_HANDLE}",
            "target": "newAppsSection",
        },
        safe="/",
    )
    return f"https://{shop}/admin/themes/current/editor?{query}"


def _store(shop: str) -> str:
    return shop.removesuffix(".myshopify.com")
