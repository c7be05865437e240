"""`POST /admin/oauth/access_token`: token exchange, refresh and the migration exchange."""

from __future__ import annotations

from starlette.routing import BaseRoute

from tests.support.fake_shopify.state import State


def routes(state: State) -> list[BaseRoute]:
    """The OAuth routes of the fake Shopify."""
    return []
