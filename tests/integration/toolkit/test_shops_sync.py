"""`shops sync` (SPEC S8) against the fake Admin API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from tests.support.admin_api import AdminApi, admin_api, subscription
from tests.support.helpers import table_rows
from tests.support.settings import make_settings
from timedify.db import make_engine
from timedify.metrics import Metrics
from timedify.models import Shop, ShopSession
from timedify.settings import Settings
from timedify.store import appdata
from timedify.toolkit import shops_sync

SCOPED = "scoped.myshopify.com"  # granted scopes changed, the webhook was lost
PAYING = "paying.myshopify.com"  # subscribed, the webhook was lost
GONE = "gone.myshopify.com"  # uninstalled, the webhook was lost
FINE = "fine.myshopify.com"  # all in order
SHOPS = (FINE, GONE, PAYING, SCOPED)


@dataclass
class Setup:
    api: AdminApi
    engine: Engine
    db_url: str
    settings: Settings

    def shops(self) -> dict[str, dict[str, Any]]:
        return {row["domain"]: row for row in table_rows(self.db_url, Shop)}

    def sessions(self) -> dict[str, dict[str, Any]]:
        return {row["shop_domain"]: row for row in table_rows(self.db_url, ShopSession)}

    def sync(self, shops: list[str] | None = None, dry_run: bool = False, **kw: Any) -> Any:
        return shops_sync.sync(self.engine, self.settings, self.api.client, shops, dry_run, **kw)


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[Setup]:
    engine = make_engine(db_url)
    settings = make_settings(db_url, tmp_path)
    try:
        with admin_api(settings) as api:
            _install(engine, api)
            yield Setup(api, engine, db_url, settings)
    finally:
        engine.dispose()


def _install(engine: Engine, api: AdminApi) -> None:
    """Four shops as the app's data has them; Shopify then differs for three of them."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for shop in SHOPS:
            appdata.upsert_shop(conn, shop, now, installed=True, scopes="read_products")
            conn.execute(ShopSession.__table__.insert().values(_session(shop, now)))
            api.tokens.issue(shop, install=shop != GONE)
            api.state.scopes[shop] = ["read_products"]
    api.state.scopes[SCOPED] = ["write_themes", "read_products"]
    api.state.subscriptions[PAYING] = [subscription(1)]
    # FINE and GONE had their billing state read before (inactive, metafield written).
    for shop in (FINE, SCOPED):
        _record_inactive(engine, shop, now)


def _record_inactive(engine: Engine, shop: str, now: datetime) -> None:
    with engine.begin() as conn:
        appdata.upsert_shop(conn, shop, now, subscription_active=False, subscription_checked_at=now)


def _session(shop: str, now: datetime) -> dict[str, Any]:
    return {
        "id": f"offline_{shop}",
        "shop_domain": shop,
        "access_token": "encrypted-elsewhere",
        "scope": "read_products",
        "is_online": False,
        "created_at": now,
        "updated_at": now,
    }


def test_sync_repairs_scopes_subscription_and_installed_state(setup: Setup) -> None:
    metrics = Metrics()
    report = setup.sync(metrics=metrics)
    by_shop = {s.shop: s for s in report.shops}
    assert by_shop[FINE].status == "ok"
    assert by_shop[FINE].repairs == []
    assert [(r.kind, r.after) for r in by_shop[SCOPED].repairs] == [
        ("scopes", "read_products,write_themes")
    ]
    assert [(r.kind, r.before, r.after) for r in by_shop[PAYING].repairs] == [
        ("subscription", None, "active")
    ]
    assert [(r.kind, r.after) for r in by_shop[GONE].repairs] == [("installed", "uninstalled")]

    shops, sessions = setup.shops(), setup.sessions()
    assert shops[SCOPED]["scopes"] == "read_products,write_themes"
    assert sessions[SCOPED]["scope"] == "read_products,write_themes"
    assert shops[PAYING]["subscription_active"] is True
    assert shops[PAYING]["plan_status"] == "ACTIVE"
    assert setup.api.state.metafields[(PAYING, "timedify.subscription_active")] == "true"
    assert shops[GONE]["installed"] is False
    assert shops[GONE]["uninstalled_at"] is not None
    assert GONE not in sessions
    assert all(shops[s]["synced_at"] is not None for s in SHOPS)
    assert metrics.shop_repairs.labels("scopes")._value.get() == 1
    assert metrics.shop_repairs.labels("installed")._value.get() == 1

    again = setup.sync()
    assert again.repairs == []
    assert {s.shop for s in again.shops} == {FINE, PAYING, SCOPED}  # GONE is uninstalled now


def test_dry_run_reports_the_repairs_and_makes_none(setup: Setup) -> None:
    before = setup.shops()
    report = setup.sync(dry_run=True)
    assert {(r.shop, r.kind) for r in report.repairs} == {
        (SCOPED, "scopes"),
        (PAYING, "subscription"),
        (GONE, "installed"),
    }
    assert setup.shops() == before
    assert GONE in setup.sessions()
    assert setup.api.state.metafield_writes == []


def test_one_shop_by_name_and_an_unknown_one(setup: Setup) -> None:
    report = setup.sync([SCOPED, "nobody.myshopify.com"])
    assert {s.shop: s.status for s in report.shops} == {
        "nobody.myshopify.com": "unknown",
        SCOPED: "repaired",
    }
    assert setup.shops()[PAYING]["subscription_active"] is None  # not asked for


def test_an_unreachable_shop_is_reported_and_left_alone(setup: Setup) -> None:
    setup.api.state.next_5xx = 1000
    client = setup.api.new_client(shopify_admin_max_retries=0)
    report = shops_sync.sync(setup.engine, setup.settings, client, [SCOPED])
    assert [s.status for s in report.shops] == ["unreachable"]
    assert report.repairs == []
    assert setup.shops()[SCOPED]["scopes"] == "read_products"


def test_the_daily_run_takes_each_due_shop_once(setup: Setup) -> None:
    first = shops_sync.run_due(setup.engine, setup.settings, setup.api.client, limit=2)
    second = shops_sync.run_due(setup.engine, setup.settings, setup.api.client, limit=10)
    third = shops_sync.run_due(setup.engine, setup.settings, setup.api.client, limit=10)
    firsts = {s.shop for s in first.shops}
    seconds = {s.shop for s in second.shops}
    assert len(firsts) == 2
    assert firsts.isdisjoint(seconds)
    assert firsts | seconds == set(SHOPS)
    assert third.shops == []
    # A day later they are due again.
    with setup.engine.begin() as conn:
        conn.execute(update(Shop).values(synced_at=datetime.now(UTC) - timedelta(hours=25)))
    fourth = shops_sync.run_due(setup.engine, setup.settings, setup.api.client, limit=10)
    assert {s.shop for s in fourth.shops} == {FINE, PAYING, SCOPED}
