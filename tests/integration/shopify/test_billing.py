"""Billing state (SPEC S7) against the fake Admin API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.support.admin_api import AdminApi, admin_api, shop_gid, subscription
from tests.support.helpers import events, store_event, table_rows
from tests.support.settings import SHOP, make_settings
from timedify.db import make_engine
from timedify.models import EventState, Shop, Subscription
from timedify.processing.followups import billing_followups
from timedify.processing.worker import Worker
from timedify.shopify.billing import Billing, state_of
from timedify.store import appdata

METAFIELD = (SHOP, "timedify.subscription_active")


@dataclass
class Setup:
    api: AdminApi
    engine: Engine
    db_url: str
    tmp_path: Path

    def billing(self, **overrides: Any) -> Billing:
        settings = make_settings(self.db_url, self.tmp_path, **overrides)
        return Billing(self.engine, settings, self.api.client)

    def shop(self) -> dict[str, Any]:
        [row] = [r for r in table_rows(self.db_url, Shop) if r["domain"] == SHOP]
        return row

    def writes(self) -> list[str]:
        return [item["value"] for shop, item in self.api.state.metafield_writes if shop == SHOP]


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[Setup]:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        appdata.upsert_shop(conn, SHOP, datetime.now(UTC), installed=True)
    try:
        with admin_api(make_settings(db_url, tmp_path)) as api:
            api.tokens.issue(SHOP)
            yield Setup(api, engine, db_url, tmp_path)
    finally:
        engine.dispose()


def test_an_active_subscription_is_mirrored_and_published(setup: Setup) -> None:
    setup.api.state.subscriptions[SHOP] = [subscription(1)]
    state = setup.billing().subscription_state(SHOP)
    assert state.active
    assert state.status == "ACTIVE"
    assert state.name == "Timedify Pro"
    assert state.current_period_end is not None
    shop = setup.shop()
    assert shop["subscription_active"] is True
    assert shop["subscription_checked_at"] is not None
    assert shop["plan_status"] == "ACTIVE"
    [row] = table_rows(setup.db_url, Subscription)
    assert (row["id"], row["status"]) == ("gid://shopify/AppSubscription/1", "ACTIVE")
    assert setup.api.state.metafields[METAFIELD] == "true"
    [(_shop, item)] = setup.api.state.metafield_writes
    assert item["ownerId"] == shop_gid(SHOP)
    assert item["type"] == "boolean"


def test_no_subscription_is_inactive(setup: Setup) -> None:
    state = setup.billing().subscription_state(SHOP)
    assert not state.active
    assert state.status is None
    assert setup.shop()["subscription_active"] is False
    assert setup.api.state.metafields[METAFIELD] == "false"


def test_a_subscription_past_its_period_end_is_inactive(setup: Setup) -> None:
    setup.api.state.subscriptions[SHOP] = [subscription(1, ends_in=-timedelta(minutes=1))]
    assert not setup.billing().subscription_state(SHOP).active


@pytest.mark.parametrize(("allow", "active"), [(False, False), (True, True)])
def test_a_test_charge_counts_only_when_allowed(setup: Setup, allow: bool, active: bool) -> None:
    setup.api.state.subscriptions[SHOP] = [subscription(1, test=True)]
    state = setup.billing(billing_allow_test=allow).subscription_state(SHOP)
    assert state.active is active
    assert state.test


def test_the_metafield_is_written_only_when_the_state_changes(setup: Setup) -> None:
    billing = setup.billing()
    setup.api.state.subscriptions[SHOP] = [subscription(1)]
    billing.subscription_state(SHOP)
    billing.subscription_state(SHOP)
    assert setup.writes() == ["true"]
    setup.api.state.subscriptions[SHOP] = []
    billing.subscription_state(SHOP)
    billing.subscription_state(SHOP)
    assert setup.writes() == ["true", "false"]
    [row] = table_rows(setup.db_url, Subscription)
    assert row["status"] == "INACTIVE"  # no longer listed as active by Shopify
    assert setup.shop()["plan_status"] == "INACTIVE"


def test_a_refused_metafield_write_is_tried_again_at_the_next_read(setup: Setup) -> None:
    billing = setup.billing()
    mirrored = billing.mirror(SHOP, "gid://shopify/Shop/0", [subscription(1)])
    assert mirrored.state.active
    assert not mirrored.published
    assert setup.shop()["subscription_active"] is None  # not recorded: not published
    setup.api.state.subscriptions[SHOP] = [subscription(1)]
    billing.subscription_state(SHOP)
    assert setup.api.state.metafields[METAFIELD] == "true"
    assert setup.shop()["subscription_active"] is True


def test_a_fresh_cached_state_is_answered_without_calling_shopify(setup: Setup) -> None:
    setup.api.state.subscriptions[SHOP] = [subscription(1)]
    billing = setup.billing()
    billing.subscription_state(SHOP)
    calls = len(setup.api.state.requests)
    assert billing.subscription_state(SHOP, max_age_seconds=300).active
    # Another process (the worker) answers from what the database mirrors.
    other = setup.billing()
    cached = other.subscription_state(SHOP, max_age_seconds=300)
    assert cached.active
    assert cached.status == "ACTIVE"
    assert len(setup.api.state.requests) == calls
    billing.subscription_state(SHOP, max_age_seconds=0)
    assert len(setup.api.state.requests) == calls + 1


def test_state_of_picks_the_subscription_that_makes_the_shop_active() -> None:
    now = datetime.now(UTC)
    subs = [subscription(1, status="PENDING"), subscription(2, name="Timedify Basic")]
    state = state_of(subs, now, allow_test=False)
    assert state.active
    assert state.name == "Timedify Basic"
    assert not state_of([subscription(3, ends_in=None)], now, allow_test=True).active


def test_the_worker_rereads_billing_after_a_subscription_webhook(setup: Setup) -> None:
    setup.api.state.subscriptions[SHOP] = [subscription(7)]
    followups = billing_followups(setup.billing().refresh, settle=0)
    settings = make_settings(setup.db_url, setup.tmp_path)
    store_event(setup.db_url, "app_subscriptions/update", SHOP)
    Worker(settings, setup.engine, after_commit=followups).run_once()
    assert followups.wait_idle(10)
    followups.stop()
    assert setup.shop()["subscription_active"] is True
    assert "TimedifyBilling" in setup.api.operations()


def test_a_failing_reread_never_fails_the_webhook(setup: Setup) -> None:
    setup.api.state.next_5xx = 100  # Shopify is down for the re-read
    followups = billing_followups(setup.billing().refresh, settle=0)
    settings = make_settings(setup.db_url, setup.tmp_path)
    store_event(setup.db_url, "app_subscriptions/update", SHOP)
    Worker(settings, setup.engine, after_commit=followups).run_once()
    assert followups.wait_idle(10)
    followups.stop()
    [event] = events(setup.db_url)
    assert event["state"] == EventState.PROCESSED
