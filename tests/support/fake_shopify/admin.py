"""`POST /admin/api/<version>/graphql.json`: the GraphQL Admin API with cost and throttling.

A request is authenticated by `X-Shopify-Access-Token`: a token in `State.access_tokens`, not
expired, of a shop in `State.installed` (else 401, as Shopify answers for an uninstalled app).
Each shop has a leaky bucket (`AdminApi.maximum`, `restore_rate`); a query whose requested cost
exceeds what is left is answered `THROTTLED`. The operations the app sends are answered by the
fields they ask for: `currentAppInstallation` (activeSubscriptions, accessScopes), `shop { id }`,
and the `metafieldsSet` mutation (recorded in `AdminApi.metafields`).
"""

from __future__ import annotations

import re
import time
import zlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.support.fake_shopify.state import AdminApi, State

_SHOP_FIELD = re.compile(r"\bshop\s*\{")


def shop_gid(shop: str) -> str:
    """The fake's GraphQL id of a shop (stable)."""
    return f"gid://shopify/Shop/{zlib.crc32(shop.encode())}"


def routes(state: State) -> list[BaseRoute]:
    """The Admin API routes of the fake Shopify."""

    async def graphql(request: Request) -> Response:
        body = await request.json()
        token = request.headers.get("x-shopify-access-token", "")
        with state.lock:
            return _answer(state, token, body)

    return [Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"])]


def _answer(state: State, token: str, body: dict[str, Any]) -> Response:
    api = state.admin
    operation = str(body.get("operationName") or "")
    shop = _authenticated_shop(state, token)
    if shop is None:
        return _reply(
            api, None, operation, 401, {"errors": "[API] Invalid API key or access token"}
        )
    if api.next_429 > 0:
        api.next_429 -= 1
        headers = {"Retry-After": api.retry_after} if api.retry_after is not None else {}
        return _reply(api, shop, operation, 429, {"errors": "Exceeded rate limit"}, headers)
    if api.next_5xx > 0:
        api.next_5xx -= 1
        return _reply(api, shop, operation, api.status_5xx, {"errors": "Internal error"})
    requested = api.costs.get(operation, api.default_cost)
    level = _level(api, shop)
    if requested > level:
        errors = [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]
        doc = {"errors": errors, "extensions": _cost(api, requested, None, level)}
        return _reply(api, shop, operation, 200, doc, note="THROTTLED")
    api.buckets[shop] = (level - requested, api.clock())
    data = _data(state, shop, str(body.get("query") or ""), body.get("variables") or {})
    if not data:
        errors = [{"message": "Field doesn't exist", "extensions": {"code": "undefinedField"}}]
        return _reply(api, shop, operation, 200, {"errors": errors}, note="undefinedField")
    doc = {"data": data, "extensions": _cost(api, requested, requested, level - requested)}
    return _reply(api, shop, operation, 200, doc)


def _authenticated_shop(state: State, token: str) -> str | None:
    grant = state.access_tokens.get(token)
    if grant is None or grant.shop not in state.installed:
        return None
    if grant.expires_at is not None and grant.expires_at < time.time():
        return None
    return grant.shop


def _level(api: AdminApi, shop: str) -> float:
    level, at = api.buckets.get(shop, (api.maximum, api.clock()))
    return min(api.maximum, level + max(0.0, api.clock() - at) * api.restore_rate)


def _cost(api: AdminApi, requested: float, actual: float | None, level: float) -> dict[str, Any]:
    status = {
        "maximumAvailable": api.maximum,
        "currentlyAvailable": level,
        "restoreRate": api.restore_rate,
    }
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": status,
        }
    }


def _data(state: State, shop: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    api = state.admin
    if "metafieldsSet" in query:
        return {"metafieldsSet": _metafields_set(api, shop, variables.get("metafields") or [])}
    data: dict[str, Any] = {}
    if _SHOP_FIELD.search(query):
        data["shop"] = {"id": shop_gid(shop)}
    if "currentAppInstallation" in query:
        scopes = api.scopes.get(shop, state.scope.split(","))
        data["currentAppInstallation"] = {
            "activeSubscriptions": list(api.subscriptions.get(shop, [])),
            "accessScopes": [{"handle": h} for h in scopes if h],
        }
    return data


def _metafields_set(api: AdminApi, shop: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    written, errors = [], []
    for item in inputs:
        if item.get("ownerId") != shop_gid(shop):
            errors.append({"field": ["ownerId"], "message": "Owner not found", "code": "INVALID"})
            continue
        api.metafield_writes.append((shop, dict(item)))
        key = f"{item.get('namespace')}.{item.get('key')}"
        api.metafields[(shop, key)] = str(item.get("value"))
        written.append({"id": f"gid://shopify/Metafield/{len(api.metafield_writes)}", **item})
    return {"metafields": written, "userErrors": errors}


def _reply(
    api: AdminApi,
    shop: str | None,
    operation: str,
    status: int,
    doc: dict[str, Any],
    headers: dict[str, str] | None = None,
    note: str = "ok",
) -> Response:
    api.requests.append((shop, operation, status, note if status == 200 else str(status)))
    headers = dict(headers or {})
    if api.deprecated_reason is not None:
        headers["X-Shopify-API-Deprecated-Reason"] = api.deprecated_reason
    return JSONResponse(doc, status_code=status, headers=headers)
