"""The Admin API client against the fake Shopify: retries, throttling, 401s, logs (SPEC S6).

The client and the fake share one clock that only the client's `sleep` advances, so waits are
computed and checked without any test waiting in real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.admin_api import Clock
from tests.support.fake_shopify import FakeShopify, State, running
from tests.support.issued_tokens import IssuedTokens
from tests.support.logcapture import CapturedLogs, captured_logs
from tests.support.pgcluster import free_port
from tests.support.settings import SHOP, make_settings
from timedify.metrics import Metrics
from timedify.shopify.admin import AdminClient, ShopifyQueryError
from timedify.shopify.contracts import NeedsReauthentication, ShopifyUnavailable

SHOP_QUERY = "query ShopId { shop { id } }"


@dataclass
class Setup:
    fake: FakeShopify
    tokens: IssuedTokens
    clock: Clock
    logs: CapturedLogs
    metrics: Metrics
    tmp_path: Path

    def client(self, **overrides: Any) -> AdminClient:
        settings = make_settings(
            f"sqlite:///{self.tmp_path / 'unused.sqlite3'}",
            self.tmp_path,
            shopify_api_origin=overrides.pop("origin", self.fake.origin),
            **overrides,
        )
        return AdminClient(
            settings, self.tokens, metrics=self.metrics, sleep=self.clock.sleep, clock=self.clock
        )

    @property
    def admin(self) -> Any:
        return self.fake.state.admin

    def notes(self) -> list[str]:
        return [note for _shop, _op, _status, note in self.admin.requests]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    clock = Clock()
    state = State()
    state.admin.clock = clock
    with running(state) as fake, captured_logs() as logs:
        tokens = IssuedTokens(state)
        tokens.issue(SHOP)
        yield Setup(fake, tokens, clock, logs, Metrics(), tmp_path)


def test_a_query_returns_its_data_and_logs_one_line_without_the_token(setup: Setup) -> None:
    data = setup.client().query(SHOP, "ShopId", SHOP_QUERY)
    assert data["shop"]["id"].startswith("gid://shopify/Shop/")
    [line] = setup.logs.lines("admin_api_call")
    assert line["shop"] == SHOP
    assert line["operation"] == "ShopId"
    assert line["status"] == 200
    assert line["cost"] == 10
    assert "duration_ms" in line
    assert "error_class" not in line
    assert setup.tokens.current[SHOP].encode() not in setup.logs.raw


def test_429_with_a_fractional_retry_after_is_retried_after_that_wait(setup: Setup) -> None:
    setup.admin.next_429, setup.admin.retry_after = 2, "0.5"
    setup.client().query(SHOP, "ShopId", SHOP_QUERY)
    assert setup.notes() == ["429", "429", "ok"]
    assert len(setup.clock.sleeps) == 2
    assert all(0.5 <= s < 0.7 for s in setup.clock.sleeps)
    failed = [line for line in setup.logs.lines("admin_api_call") if line["status"] == 429]
    assert [line["error_class"] for line in failed] == ["http_429", "http_429"]


def test_a_5xx_is_retried_with_backoff_then_succeeds(setup: Setup) -> None:
    setup.admin.next_5xx = 1
    data = setup.client().query(SHOP, "ShopId", SHOP_QUERY)
    assert "shop" in data
    assert setup.notes() == ["503", "ok"]
    assert setup.logs.lines("admin_api_call")[0]["error_class"] == "http_5xx"
    assert setup.metrics.admin_calls.labels("ShopId", "http_5xx")._value.get() == 1
    assert setup.metrics.admin_calls.labels("ShopId", "ok")._value.get() == 1


def test_retries_are_bounded_then_shopify_unavailable(setup: Setup) -> None:
    setup.admin.next_5xx = 100
    with pytest.raises(ShopifyUnavailable):
        setup.client(shopify_admin_max_retries=2).query(SHOP, "ShopId", SHOP_QUERY)
    assert setup.notes() == ["503", "503", "503"]
    [gave_up] = setup.logs.lines("admin_api_gave_up")
    assert gave_up["error_class"] == "http_5xx"
    assert gave_up["level"] == "error"


def test_connection_errors_are_retried_then_shopify_unavailable(setup: Setup) -> None:
    client = setup.client(origin=f"http://127.0.0.1:{free_port()}", shopify_admin_max_retries=1)
    with pytest.raises(ShopifyUnavailable):
        client.query(SHOP, "ShopId", SHOP_QUERY)
    lines = setup.logs.lines("admin_api_call")
    assert [line["outcome"] for line in lines] == ["connection_error", "connection_error"]
    assert len(setup.clock.sleeps) == 1


def test_a_throttled_answer_is_retried_after_the_computed_wait(setup: Setup) -> None:
    """The client has never seen the shop; the fake's bucket is nearly empty."""
    setup.admin.buckets[SHOP] = (2.0, setup.clock())
    setup.client().query(SHOP, "ShopId", SHOP_QUERY)
    assert setup.notes() == ["THROTTLED", "ok"]
    # 8 points missing at 50 a second: at least 0.16 s (plus a little jitter).
    assert 0.16 <= setup.clock.sleeps[0] < 0.3
    assert setup.logs.lines("admin_api_call")[0]["error_class"] == "http_429"


def test_the_client_waits_before_a_query_the_bucket_would_not_afford(setup: Setup) -> None:
    setup.admin.maximum, setup.admin.restore_rate = 100.0, 10.0
    setup.admin.costs["Heavy"] = 40.0
    client = setup.client()
    for _ in range(4):
        client.query(SHOP, "Heavy", "query Heavy { shop { id } }")
    assert "THROTTLED" not in setup.notes()
    assert setup.clock.sleeps, "the third and fourth queries had to wait for the bucket"
    assert setup.logs.lines("admin_api_throttle_wait")


def test_a_caller_given_cost_is_used_for_a_new_operation(setup: Setup) -> None:
    setup.admin.maximum, setup.admin.restore_rate = 100.0, 10.0
    setup.admin.costs["Big"] = 90.0
    client = setup.client()
    client.query(SHOP, "ShopId", SHOP_QUERY)  # teaches the client the bucket (90 left)
    client.query(SHOP, "Big", "query Big { shop { id } }", cost=90.0)
    client.query(SHOP, "Big", "query Big { shop { id } }", cost=90.0)
    assert "THROTTLED" not in setup.notes()


def test_401_renews_the_token_once_and_succeeds(setup: Setup) -> None:
    setup.tokens.revoke(SHOP)
    setup.client().query(SHOP, "ShopId", SHOP_QUERY)
    assert setup.tokens.unauthorized == [SHOP]
    assert setup.notes() == ["401", "ok"]
    assert setup.logs.lines("admin_api_call")[0]["error_class"] == "shopify_auth"


def test_a_second_401_means_needs_reauthentication(setup: Setup) -> None:
    setup.tokens.renew = False
    setup.tokens.revoke(SHOP)
    with pytest.raises(NeedsReauthentication):
        setup.client().query(SHOP, "ShopId", SHOP_QUERY)
    assert setup.tokens.unauthorized == [SHOP]
    assert setup.notes() == ["401", "401"]
    assert {line["error_class"] for line in setup.logs.lines("admin_api_call")} == {"shopify_auth"}
    assert b"shpat_" not in setup.logs.raw


def test_a_deprecated_operation_is_warned_about_once(setup: Setup) -> None:
    setup.admin.deprecated_reason = "https://shopify.dev/api/usage/versioning#deprecation"
    client = setup.client()
    for _ in range(3):
        client.query(SHOP, "ShopId", SHOP_QUERY)
    client.query(SHOP, "Other", "query Other { shop { id } }")
    warnings = setup.logs.lines("admin_api_deprecated")
    assert [(w["operation"], w["level"]) for w in warnings] == [
        ("ShopId", "warning"),
        ("Other", "warning"),
    ]


def test_graphql_errors_are_a_query_error_not_retried(setup: Setup) -> None:
    with pytest.raises(ShopifyQueryError):
        setup.client().query(SHOP, "Nothing", "query Nothing { nothing }")
    assert setup.notes() == ["undefinedField"]


def test_a_shop_that_is_not_a_myshopify_domain_is_never_called(setup: Setup) -> None:
    with pytest.raises(ShopifyQueryError):
        setup.client().query("evil.example.com/x", "ShopId", SHOP_QUERY)
    assert setup.notes() == []
