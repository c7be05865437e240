"""The shops page (C5): `timedify shops list` as a table, and `shops sync` for one shop.

Both go through the CLI's functions (`toolkit.shops.list_shops`, `toolkit.shops_sync.sync`);
the sync needs the Shopify half (a TOKEN_ENCRYPTION_KEY): without it the button says so.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from timedify.ingest.webhooks import valid_shop_domain
from timedify.store.shops import ShopSummary
from timedify.toolkit import shops, shops_sync
from timedify.web.console.common import Console, log


async def page(console: Console, request: Request) -> Response:
    """`/console/shops`: every shop's install, billing, scopes and token state (never a token)."""

    def read() -> list[ShopSummary]:
        return shops.list_shops(console.services.engine)

    items = await console.db(read)
    can_sync = console.services.shopify is not None
    return console.render(request, "shops.html", items=items, can_sync=can_sync)


async def sync(console: Console, request: Request) -> Response:
    """POST `/console/shops/sync` (form `shop`): reconcile one shop with the Admin API (S8)."""
    shop = str((await request.form()).get("shop", "")).strip()
    shopify = console.services.shopify
    if not valid_shop_domain(shop) or shopify is None:
        message = "TOKEN_ENCRYPTION_KEY is not set" if shopify is None else "not a shop domain"
        return console.render(
            request, "shops_sync.html", status=400, shop=shop, result=None, message=message
        )
    report = await console.db(
        shops_sync.sync, console.services.engine, console.settings, shopify.admin, [shop]
    )
    log.info("console_shop_synced", shop=shop, repairs=len(report.repairs))
    result = report.shops[0] if report.shops else None
    return console.render(request, "shops_sync.html", shop=shop, result=result, message=None)
