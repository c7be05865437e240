"""A fake Shopify: a real local HTTP server for the parts of Shopify the app calls.

`oauth` answers `/admin/oauth/access_token` (token exchange, refresh, migration exchange) and
`admin` answers `/admin/api/<version>/graphql.json` (the GraphQL Admin API with cost and
throttling). Both share one `State`, so a token the OAuth endpoint issues is the one the Admin
API accepts. The service reaches it through `SHOPIFY_API_ORIGIN` (see `FakeShopify.origin`).
"""

from __future__ import annotations

from tests.support.fake_shopify.server import FakeShopify, running
from tests.support.fake_shopify.state import AccessGrant, State

__all__ = ["AccessGrant", "FakeShopify", "State", "running"]
