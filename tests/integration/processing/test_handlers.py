"""P4/P5/W3: each topic's effect on the app's own data, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, inspect, select

from tests.support.helpers import drain, events, execute, store_event, table_rows
from tests.support.settings import SHOP, make_settings
from timedify.db import make_engine
from timedify.ingest import webhooks
from timedify.models import (
    AppliedEvent,
    Base,
    ComplianceRequest,
    DeadLetter,
    EventState,
    Shop,
    ShopSession,
    Subscription,
    WebhookEvent,
)
from timedify.processing.handlers import CLOCK_SKEW
from timedify.settings import Settings
from timedify.testing import sample_payload

OTHER = "other-shop.myshopify.com"
EMAIL, PHONE = "john@example.com", "+15556251199"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, retry_base_seconds=0.01, retry_max_attempts=2)


def seed_shop(db_url: str, domain: str, sessions: int = 2) -> None:
    now = datetime.now(UTC)
    execute(
        db_url,
        insert(Shop).values(
            domain=domain,
            installed=True,
            installed_at=T0 - timedelta(days=30),
            created_at=now,
            updated_at=now,
        ),
    )
    for i in range(sessions):
        execute(
            db_url,
            insert(ShopSession).values(
                id=f"offline_{domain}_{i}",
                shop_domain=domain,
                access_token=f"shpat_secret_{i}",
                scope="read_products",
                created_at=now,
                updated_at=now,
            ),
        )


def by_webhook(db_url: str) -> dict[str, dict[str, Any]]:
    return {e["webhook_id"]: e for e in events(db_url)}


def subscription_payload(status: str, updated: datetime, sub_id: int = 1) -> dict[str, Any]:
    return {
        "app_subscription": {
            "admin_graphql_api_id": f"gid://shopify/AppSubscription/{sub_id}",
            "name": "Premium",
            "status": status,
            "created_at": T0.isoformat(),
            "updated_at": updated.isoformat(),
        }
    }


def test_app_uninstalled_removes_sessions_and_marks_shop(settings: Settings, db_url: str) -> None:
    """P4: the shop's sessions (access tokens) are deleted, other shops keep theirs."""
    seed_shop(db_url, SHOP)
    seed_shop(db_url, OTHER)
    hook = store_event(db_url, "app/uninstalled", SHOP, triggered_at=T0)
    drain(settings)
    assert {s["shop_domain"] for s in table_rows(db_url, ShopSession)} == {OTHER}
    shops = {s["domain"]: s for s in table_rows(db_url, Shop)}
    assert shops[SHOP]["installed"] is False
    assert shops[SHOP]["uninstalled_at"] == T0
    assert shops[OTHER]["installed"] is True
    assert by_webhook(db_url)[hook]["state"] == EventState.PROCESSED


def test_scopes_update_records_current_scopes(settings: Settings, db_url: str) -> None:
    seed_shop(db_url, SHOP)
    store_event(db_url, "app/scopes_update", SHOP, triggered_at=T0)
    drain(settings)
    assert {s["scope"] for s in table_rows(db_url, ShopSession)} == {"read_products,write_products"}
    [shop] = table_rows(db_url, Shop)
    assert shop["scopes"] == "read_products,write_products"
    assert shop["scopes_updated_at"] == T0


def test_subscription_is_mirrored_and_plan_follows(settings: Settings, db_url: str) -> None:
    store_event(db_url, "app_subscriptions/update", SHOP, triggered_at=T0)
    drain(settings)
    [sub] = table_rows(db_url, Subscription)
    assert sub["id"] == "gid://shopify/AppSubscription/1029266954"
    assert (sub["status"], sub["name"], sub["shop_domain"]) == ("ACTIVE", "Premium", SHOP)
    assert sub["triggered_at"] == T0
    [shop] = table_rows(db_url, Shop)
    assert shop["plan_status"] == "ACTIVE"


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "same-batch"])
def test_stale_subscription_update_never_overwrites_newer(
    settings: Settings, db_url: str, together: bool
) -> None:
    """P5: the CANCELLED update (newer) arrives first; the older ACTIVE one must not win."""
    newer = store_event(
        db_url,
        "app_subscriptions/update",
        SHOP,
        payload=subscription_payload("CANCELLED", T0 + timedelta(minutes=5)),
        triggered_at=T0 + timedelta(minutes=5),
    )
    if not together:
        drain(settings)
    older = store_event(
        db_url,
        "app_subscriptions/update",
        SHOP,
        payload=subscription_payload("ACTIVE", T0),
        triggered_at=T0,
    )
    drain(settings)
    [sub] = table_rows(db_url, Subscription)
    assert sub["status"] == "CANCELLED"
    assert table_rows(db_url, Shop)[0]["plan_status"] == "CANCELLED"
    rows = by_webhook(db_url)
    assert rows[newer]["state"] == EventState.PROCESSED
    if not together:  # in one batch the older one is simply applied first
        assert rows[older]["state"] == EventState.IGNORED
        assert rows[older]["note"].startswith("stale")


def test_stale_subscription_by_payload_updated_at_without_header(
    settings: Settings, db_url: str
) -> None:
    """P5 without X-Shopify-Triggered-At: the payload's updated_at decides."""
    payload_new = orjson.dumps(subscription_payload("FROZEN", T0 + timedelta(hours=1)))
    payload_old = orjson.dumps(subscription_payload("ACTIVE", T0))
    store_event(db_url, "app_subscriptions/update", SHOP, payload=payload_new)
    drain(settings)
    execute(db_url, Subscription.__table__.update().values(triggered_at=None))
    store_event(db_url, "app_subscriptions/update", SHOP, payload=payload_old)
    drain(settings)
    assert table_rows(db_url, Subscription)[0]["status"] == "FROZEN"


def test_scopes_update_older_than_uninstall_is_not_applied(settings: Settings, db_url: str) -> None:
    """P5: an uninstall, then a late scopes update from before it: the scopes stay as they were."""
    seed_shop(db_url, SHOP)
    store_event(db_url, "app/uninstalled", SHOP, triggered_at=T0)
    drain(settings)
    late = store_event(db_url, "app/scopes_update", SHOP, triggered_at=T0 - timedelta(minutes=1))
    drain(settings)
    assert table_rows(db_url, Shop)[0]["scopes"] is None
    assert by_webhook(db_url)[late]["state"] == EventState.IGNORED


def test_same_event_id_under_two_webhook_ids_is_applied_once(
    settings: Settings, db_url: str
) -> None:
    """W3: the same merchant action delivered to two subscriptions is applied once."""
    first = store_event(db_url, "app/uninstalled", SHOP, event_id="evt-1", triggered_at=T0)
    second = store_event(db_url, "app/uninstalled", SHOP, event_id="evt-1", triggered_at=T0)
    drain(settings)
    rows = by_webhook(db_url)
    assert sorted([rows[first]["state"], rows[second]["state"]]) == ["ignored", "processed"]
    ignored = rows[first] if rows[first]["state"] == "ignored" else rows[second]
    assert ignored["note"].startswith("duplicate")
    assert [(a["topic"], a["event_key"]) for a in table_rows(db_url, AppliedEvent)] == [
        ("app/uninstalled", "evt-1")
    ]


def test_data_request_opens_reports_and_closes(settings: Settings, db_url: str) -> None:
    """P4: a compliance request with its 30-day deadline and a report listing stored payloads."""
    order = store_event(
        db_url, "orders/create", SHOP, payload={"id": 1, "email": EMAIL, "note": "gift"}
    )
    store_event(db_url, "orders/create", SHOP, payload={"id": 2, "email": "jane@example.com"})
    request = store_event(db_url, "customers/data_request", SHOP)
    drain(settings)
    [req] = table_rows(db_url, ComplianceRequest)
    assert req["kind"] == "customers/data_request"
    assert req["status"] == "completed"
    assert req["completed_at"] is not None
    assert req["deadline_at"] == req["received_at"] + timedelta(days=30)
    assert req["data_request_ref"] == "9999"
    assert req["customer_ref"].startswith("sha256:")
    report = orjson.loads(req["report"])
    assert report["customer_records"] == 0
    assert report["webhook_payloads_mentioning_customer"] == [
        {"webhook_id": order, "topic": "orders/create"}
    ]
    assert EMAIL not in req["report"]
    assert "191167" not in req["report"]
    assert by_webhook(db_url)[request]["state"] == EventState.PROCESSED


def every_text_value(db_url: str) -> list[str]:
    """Every text and blob value of every table, as text."""
    values = []
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    values += [
                        v.decode(errors="replace") if isinstance(v, bytes) else v
                        for v in row
                        if isinstance(v, str | bytes)
                    ]
        assert inspect(engine).get_table_names()  # really scanned a schema
    finally:
        engine.dispose()
    return values


def test_customer_redact_leaves_email_and_phone_in_no_table(
    settings: Settings, db_url: str
) -> None:
    """P4: after customers/redact the customer's e-mail and phone appear nowhere."""
    store_event(db_url, "customers/data_request", SHOP)
    store_event(
        db_url,
        "orders/create",
        SHOP,
        payload={
            "id": 5,
            "email": EMAIL.upper(),
            "customer": {"id": 191167, "first_name": "John", "last_name": "Smith", "phone": PHONE},
            "note": f"call {PHONE} after 5",
        },
    )
    drain(settings)
    assert any(EMAIL in v for v in every_text_value(db_url))  # the scan can see them
    store_event(db_url, "customers/redact", SHOP)
    drain(settings)
    text = "\n".join(every_text_value(db_url)).lower()
    for secret in (EMAIL, PHONE, "john", "smith"):
        assert secret.lower() not in text
    kinds = {r["kind"]: r for r in table_rows(db_url, ComplianceRequest)}
    assert kinds["customers/redact"]["status"] == "completed"
    assert orjson.loads(kinds["customers/redact"]["report"])["webhook_payloads_scrubbed"] == 3


def test_customer_redact_leaves_other_customers_alone(settings: Settings, db_url: str) -> None:
    other = store_event(db_url, "orders/create", SHOP, payload={"email": "jane@example.com"})
    store_event(db_url, "customers/redact", SHOP)
    drain(settings)
    assert orjson.loads(by_webhook(db_url)[other]["payload"]) == {"email": "jane@example.com"}


def test_shop_redact_erases_the_shop_and_keeps_a_record(settings: Settings, db_url: str) -> None:
    seed_shop(db_url, SHOP)
    seed_shop(db_url, OTHER)
    applied = [
        store_event(db_url, "app_subscriptions/update", SHOP, triggered_at=T0),
        store_event(db_url, "customers/data_request", SHOP, triggered_at=T0),
    ]
    store_event(db_url, "app/scopes_update", SHOP, payload={"broken": True}, triggered_at=T0)
    other = store_event(db_url, "app/scopes_update", OTHER, triggered_at=T0)
    drain(settings)
    assert len(table_rows(db_url, DeadLetter)) == 1
    redact = store_event(db_url, "shop/redact", SHOP, triggered_at=T0 + timedelta(days=2))
    drain(settings)
    assert {s["shop_domain"] for s in table_rows(db_url, ShopSession)} == {OTHER}
    assert [s["domain"] for s in table_rows(db_url, Shop)] == [OTHER]
    assert table_rows(db_url, Subscription) == []
    remaining = by_webhook(db_url)
    assert set(remaining) == {other, redact, *applied}, "the unapplied dead event is gone"
    for webhook_id in [redact, *applied]:  # applied ones stay as content-free records
        assert remaining[webhook_id]["payload"] == b"{}"
    assert remaining[other]["payload"] != b"{}"
    assert remaining[redact]["state"] == EventState.PROCESSED
    assert table_rows(db_url, DeadLetter) == []
    [record] = table_rows(db_url, ComplianceRequest)
    assert (record["kind"], record["status"], record["shop_domain"]) == (
        "shop/redact",
        "completed",
        SHOP,
    )
    assert record["report"] is None

    # Late events from before the redaction must not bring the shop back (P5).
    late = [
        store_event(db_url, topic, SHOP, triggered_at=T0 + timedelta(days=1))
        for topic in ("app_subscriptions/update", "app/uninstalled", "app/scopes_update")
    ]
    drain(settings)
    assert table_rows(db_url, Subscription) == []
    assert [r for r in table_rows(db_url, Shop) if r["domain"] == SHOP] == []
    for webhook_id in late:
        assert by_webhook(db_url)[webhook_id]["state"] == EventState.IGNORED
        assert "shop/redact" in by_webhook(db_url)[webhook_id]["note"]


def test_sample_payloads_of_every_topic_are_processed(settings: Settings, db_url: str) -> None:
    """Each of the six topics, with Shopify's sample payload, ends processed."""
    for topic in webhooks.TOPICS:
        store_event(db_url, topic, SHOP, payload=sample_payload(topic, SHOP))
    drain(settings)
    assert {e["state"] for e in events(db_url)} == {EventState.PROCESSED}


def test_a_forged_future_time_does_not_make_later_real_updates_stale(
    settings: Settings, db_url: str
) -> None:
    """P5 bounds event times to the receipt plus a small skew: one delivery replayed with
    `X-Shopify-Triggered-At: 2099-...` (the header is not signed) cannot pin the plan."""
    now = datetime.now(UTC)
    store_event(
        db_url,
        "app_subscriptions/update",
        SHOP,
        payload=subscription_payload("ACTIVE", now),
        triggered_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    drain(settings)
    later = now + CLOCK_SKEW + timedelta(minutes=1)
    store_event(
        db_url,
        "app_subscriptions/update",
        SHOP,
        payload=subscription_payload("CANCELLED", later),
        triggered_at=later,
    )
    execute(db_url, WebhookEvent.__table__.update().values(received_at=later))
    drain(settings)
    assert table_rows(db_url, Shop)[0]["plan_status"] == "CANCELLED"
