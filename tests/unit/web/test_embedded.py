"""SPEC S1: the embedded page's URLs and headers, as pure functions."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request

from tests.support.settings import SHOP
from timedify.testing import admin_host
from timedify.web import embedded


def _b64(text: str, *, urlsafe: bool = False, pad: bool = True) -> str:
    raw = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(text.encode()).decode()
    return raw if pad else raw.rstrip("=")


@pytest.mark.parametrize(
    "host",
    [
        admin_host(SHOP),
        _b64("admin.shopify.com/store/demo-shop"),
        _b64("admin.shopify.com/store/demo-shop", pad=False),
        _b64("admin.shopify.com/store/demo?>", urlsafe=True),
        _b64(f"{SHOP}/admin"),
        _b64("ADMIN.SHOPIFY.COM/store/x"),
    ],
)
def test_hosts_of_shopify_are_valid(host: str) -> None:
    assert embedded.valid_host(host)


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "not base64!",
        _b64("evil.example.com/store/x"),
        _b64("admin.shopify.com.evil.com/store/x"),
        _b64("shopify.com@evil.com/x"),
        "A" * 600,
        base64.b64encode(b"\xff\xfe").decode(),
        _b64("admin.shopify.com/store/dëmo"),  # the admin's host is ASCII
    ],
)
def test_other_hosts_are_invalid(host: str | None) -> None:
    assert not embedded.valid_host(host)


def test_frame_ancestors_for_a_shop_and_for_nobody() -> None:
    assert (
        embedded.frame_ancestors(SHOP)
        == f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    )
    assert embedded.frame_ancestors(None) == "frame-ancestors 'none';"


def _request(path: str, query: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [],
    }
    return Request(scope)


def test_the_bounce_location_drops_id_token_and_names_the_way_back() -> None:
    request = _request("/app", f"embedded=1&shop={SHOP}&host=aG9zdA&id_token=eyJx.eyJy.z&locale=de")
    location = urlsplit(embedded.bounce_location(request, "/auth/session-token"))
    assert location.path == "/auth/session-token"
    query = parse_qs(location.query)
    assert query["shop"] == [SHOP]
    assert "id_token" not in query
    reload = urlsplit(query["shopify-reload"][0])
    assert reload.path == "/app"
    assert not reload.netloc  # a path on this origin, nothing taken from the request
    assert parse_qs(reload.query) == {
        "embedded": ["1"],
        "shop": [SHOP],
        "host": ["aG9zdA"],
        "locale": ["de"],
    }


def test_the_bounce_location_does_not_nest_an_earlier_reload() -> None:
    request = _request("/app", "embedded=1&shopify-reload=https://evil.example.com/")
    query = parse_qs(urlsplit(embedded.bounce_location(request, "/b")).query)
    assert query["shopify-reload"] == ["/app?embedded=1"]


def test_admin_plan_and_theme_editor_urls() -> None:
    assert embedded.admin_app_url(SHOP, "key") == (
        "https://admin.shopify.com/store/demo-shop/apps/key"
    )
    assert embedded.plan_page_url(SHOP, "timedify") == (
        "https://admin.shopify.com/store/demo-shop/charges/timedify/pricing_plans"
    )
    assert embedded.theme_editor_url(SHOP, "key") == (
        f"https://{SHOP}/admin/themes/current/editor"
        "?template=index&addAppBlockId=key/a-timed-start&target=newAppsSection"
    )
