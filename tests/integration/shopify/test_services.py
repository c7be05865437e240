"""The Shopify half as the service wires it (shopify/services.py), against the fake Shopify:
a merchant's first admin load exchanges a token and shows the billing state; the console's
shops page lists the shop and its sync button repairs what Shopify says differently."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.admin_api import subscription
from tests.support.console import PASSWORD, csrf_of, logged_in
from tests.support.fake_shopify.server import FakeShopify, running
from tests.support.fake_shopify.state import State
from tests.support.helpers import table_rows
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings
from timedify.models import Shop, ShopSession
from timedify.shopify.services import ShopifyServices
from timedify.testing import admin_host, session_token

API_KEY = "test-key"


@dataclass
class Service:
    url: str
    fake: FakeShopify
    db_url: str

    def admin_load(self) -> httpx.Response:
        token = session_token(SHOP, secret=SECRET, api_key=API_KEY)
        query = {"shop": SHOP, "host": admin_host(SHOP), "embedded": "1", "id_token": token}
        return httpx.get(f"{self.url}/app?{urlencode(query)}", timeout=30)


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    with running(State(client_id=API_KEY, client_secret=SECRET)) as fake:
        settings = make_settings(
            db_url, tmp_path, shopify_api_origin=fake.origin, console_password=PASSWORD
        )
        with threaded_server(settings) as (url, _app):
            yield Service(url, fake, db_url)


def test_first_admin_load_installs_the_shop_and_shows_its_subscription(service: Service) -> None:
    service.fake.state.admin.subscriptions[SHOP] = [subscription(1)]
    page = service.admin_load()
    assert page.status_code == 200, page.text
    assert "Timedify Pro" in page.text
    [session] = table_rows(service.db_url, ShopSession)
    assert session["access_token"] not in service.fake.state.access_tokens  # encrypted at rest
    [shop] = table_rows(service.db_url, Shop)
    assert shop["installed"] is True
    assert shop["subscription_active"] is True
    writes = service.fake.state.admin.metafield_writes
    assert [item["value"] for _shop, item in writes] == ["true"]  # the theme extension reads it
    assert service.fake.state.count("token_exchange") == 1
    assert service.admin_load().status_code == 200
    assert service.fake.state.count("token_exchange") == 1  # the stored token is used


def test_the_console_lists_the_shop_and_its_sync_repairs_the_scopes(service: Service) -> None:
    assert service.admin_load().status_code == 200
    service.fake.state.admin.scopes[SHOP] = ["read_themes", "write_themes", "read_products"]
    client, _csrf = logged_in(service.url)
    listed = client.get("/console/shops")
    assert listed.status_code == 200
    assert SHOP in listed.text
    synced = client.post("/console/shops/sync", data={"csrf": csrf_of(listed.text), "shop": SHOP})
    assert synced.status_code == 200, synced.text
    assert "repaired" in synced.text
    [shop] = table_rows(service.db_url, Shop)
    assert set(shop["scopes"].split(",")) == {"read_themes", "write_themes", "read_products"}
    refused = client.post("/console/shops/sync", data={"shop": SHOP})  # no CSRF token
    assert refused.status_code == 403


def test_without_a_token_key_there_is_no_shopify_half(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, tmp_path, token_encryption_key=None)
    assert ShopifyServices.optional(settings, engine=None) is None  # type: ignore[arg-type]
