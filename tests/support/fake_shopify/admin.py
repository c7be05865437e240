"""`POST /admin/api/<version>/graphql.json`: the GraphQL Admin API with cost and throttling."""

from __future__ import annotations

from starlette.routing import BaseRoute

from tests.support.fake_shopify.state import State


def routes(state: State) -> list[BaseRoute]:
    """The Admin API routes of the fake Shopify."""
    return []
