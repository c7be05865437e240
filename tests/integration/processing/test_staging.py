"""P2-P5 with staged handlers: a batch read ahead and written at the end ends exactly as the
same events applied one at a time, a failing event leaves no trace, and what the database
refuses at the end is found and fails alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from tests.support.batches import claimed, in_batches
from tests.support.helpers import events, execute, store_events, table_rows
from tests.support.rows import insert_rows
from timedify.db import make_engine
from timedify.models import (
    AppliedEvent,
    EventState,
    Shop,
    ShopSession,
    Subscription,
    WebhookEvent,
)
from timedify.processing import batches
from timedify.processing.batches import DUPLICATE_NOTE
from timedify.processing.handlers import HANDLERS, Handler, Staging, app_uninstalled
from timedify.processing.retry import RetryPolicy
from timedify.processing.staging import AppData
from timedify.records import AttemptResult, ClaimedEvent, Outcome
from timedify.testing import SignedWebhook, signed_webhook

POLICY = RetryPolicy(max_attempts=3, base=60, cap=600)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _in_batches(db_url: str, handlers: Mapping[str, Handler] = HANDLERS) -> list[Outcome]:
    return in_batches(db_url, POLICY, handlers)


def _one_at_a_time(db_url: str) -> list[Outcome]:
    """Every due event through `process`, each in its own transaction, in the claim's order."""
    engine = make_engine(db_url)
    try:
        return [batches.process(engine, e, policy=POLICY) for e in claimed(db_url)]
    finally:
        engine.dispose()


def _hook(topic: str, shop: str, minute: int, payload: Any = None, **kw: Any) -> SignedWebhook:
    at = T0 + timedelta(minutes=minute)
    if payload is None and topic == "app/scopes_update":
        payload = {"current": ["read_orders", f"scope_{minute}"], "updated_at": at.isoformat()}
    return signed_webhook(topic, shop, "s", payload=payload, triggered_at=at, **kw)


def _subscription(shop: str, number: int, status: str, minute: int) -> dict[str, Any]:
    at = (T0 + timedelta(minutes=minute)).isoformat()
    sub_id = f"gid://shopify/AppSubscription/{shop}-{number}"
    return {
        "app_subscription": {
            "admin_graphql_api_id": sub_id,
            "name": f"Plan {number}",
            "status": status,
            "created_at": T0.isoformat(),
            "updated_at": at,
        }
    }


def _rounds(prefix: str) -> list[list[SignedWebhook]]:
    """Two rounds of deliveries over three shops: the second holds late, stale and repeated
    events, an uninstall followed by changes, and a payload no handler can apply."""
    a, b, c = (f"{prefix}-{n}.myshopify.com" for n in range(3))
    sub = "app_subscriptions/update"
    first = [
        _hook("app/scopes_update", a, 10),
        _hook("app/scopes_update", a, 12, event_id=f"{prefix}-same"),
        _hook(sub, a, 11, _subscription(a, 1, "ACTIVE", 11)),
        _hook(sub, b, 11, _subscription(b, 1, "ACTIVE", 11)),
        _hook(sub, b, 13, _subscription(b, 2, "PENDING", 13)),
        _hook("app/uninstalled", c, 14),
        _hook("app/scopes_update", c, 15),
    ]
    second = [
        _hook("app/scopes_update", a, 12, event_id=f"{prefix}-same"),  # the same action again
        _hook("app/scopes_update", a, 11),  # older than what is recorded
        _hook(sub, a, 9, _subscription(a, 1, "FROZEN", 9)),  # stale
        _hook(sub, a, 20, _subscription(a, 1, "CANCELLED", 20)),
        _hook(sub, b, 21, _subscription(b, 2, "ACTIVE", 21)),
        _hook("app/uninstalled", a, 22),
        _hook("app/scopes_update", a, 23),
        _hook("app/scopes_update", b, 24, {"previous": []}),  # no `current`: never applies
        _hook("app/uninstalled", c, 13),  # older than the uninstall recorded
        _hook("app/scopes_update", b, 25),
    ]
    return [first, second]


def _sessions(db_url: str, prefix: str) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"offline_{prefix}-{n}.myshopify.com",
            "shop_domain": f"{prefix}-{n}.myshopify.com",
            "access_token": "encrypted",
            "scope": "read_orders",
            "is_online": False,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(3)
    ]
    insert_rows(db_url, ShopSession, rows)


def _state(db_url: str, prefix: str) -> dict[str, Any]:
    """What the app holds about the prefix's shops, with the prefix taken out."""

    def strip(value: Any) -> Any:
        return value.replace(prefix, "P") if isinstance(value, str) else value

    def rows(model: Any, drop: set[str]) -> list[dict[str, Any]]:
        found = [
            {k: strip(v) for k, v in row.items() if k not in drop}
            for row in table_rows(db_url, model)
            if prefix in str(row.get("shop_domain", row.get("domain")))
        ]
        return sorted(found, key=repr)

    outcomes = Counter(
        (e["topic"], e["state"], e["note"]) for e in events(db_url) if prefix in e["shop_domain"]
    )
    return {
        "shops": rows(Shop, {"created_at", "updated_at"}),
        "subscriptions": rows(Subscription, {"updated_at"}),
        "sessions": rows(ShopSession, {"created_at", "updated_at", "access_token"}),
        "events": outcomes,
    }


def test_a_staged_batch_ends_as_the_same_events_applied_one_at_a_time(db_url: str) -> None:
    """Two rounds of mixed deliveries over three shops, once through batches (read ahead,
    written at the end) and once one event per transaction: shops, subscriptions, sessions
    and every event's outcome come out the same."""
    for prefix in ("batched", "single"):
        _sessions(db_url, prefix)
    for batched, single in zip(_rounds("batched"), _rounds("single"), strict=True):
        store_events(db_url, batched)
        _in_batches(db_url)
        store_events(db_url, single)
        _one_at_a_time(db_url)

    together, alone = _state(db_url, "batched"), _state(db_url, "single")
    assert together == alone
    # The scenario exercises what it claims to: staleness, duplicates, uninstalls, a dead letter.
    notes = {note for (_topic, _state, note) in together["events"]}
    assert DUPLICATE_NOTE in notes
    assert any(note and note.startswith("stale") for note in notes)
    assert together["events"][("app/scopes_update", EventState.DEAD, None)] == 1
    plans = {shop["domain"]: shop["plan_status"] for shop in together["shops"]}
    assert plans == {
        "P-0.myshopify.com": "CANCELLED",
        "P-1.myshopify.com": "ACTIVE",
        "P-2.myshopify.com": None,
    }
    assert [s["scope"] for s in together["sessions"]] == ["read_orders,scope_25"]


def _writes_then_fails(bad: str) -> Handler:
    """app/uninstalled, staged, that changes the shop and then raises for one shop."""

    def staged(data: AppData, event: ClaimedEvent, now: datetime) -> str | None:
        note = app_uninstalled(data, event, now)
        if event.shop_domain == bad:
            data.upsert_shop(event.shop_domain, now, plan_status="WRITTEN BEFORE FAILING")
            raise RuntimeError("boom")
        return note

    return Staging(staged)


def test_a_staged_event_that_fails_leaves_no_trace_and_comes_back(db_url: str) -> None:
    """The failing event's staged changes are undone (its shop row never appears, its sessions
    stay), the others of the batch are applied in the same transaction, and the failed event
    is not in the exactly-once ledger: its retry applies it."""
    shops = [f"shop-{n}.myshopify.com" for n in range(4)]
    bad = shops[2]
    store_events(db_url, [_hook("app/uninstalled", s, n) for n, s in enumerate(shops)])

    outcomes = _in_batches(db_url, {**HANDLERS, "app/uninstalled": _writes_then_fails(bad)})

    assert [o.state for o in outcomes] == ["processed", "processed", "retrying", "processed"]
    assert sorted(s["domain"] for s in table_rows(db_url, Shop)) == sorted(set(shops) - {bad})
    ledger = {row["event_pk"] for row in table_rows(db_url, AppliedEvent)}
    bad_event = next(e for e in events(db_url) if e["shop_domain"] == bad)
    assert bad_event["id"] not in ledger
    assert bad_event["state"] == EventState.RETRYING

    _make_due(db_url)
    again = _in_batches(db_url)
    assert [o.state for o in again] == [AttemptResult.PROCESSED]
    assert bad in {s["domain"] for s in table_rows(db_url, Shop)}


def _make_due(db_url: str) -> None:
    e = WebhookEvent
    execute(db_url, update(e).where(e.state == EventState.RETRYING).values(next_attempt_at=T0))


def test_a_payload_that_can_never_apply_is_a_dead_letter_at_its_first_attempt(
    db_url: str,
) -> None:
    """InvalidPayload is permanent: no retry, a dead letter with the reason at once (P3)."""
    store_events(db_url, [_hook("app/scopes_update", "shop.myshopify.com", 1, {"previous": []})])

    (outcome,) = _in_batches(db_url)

    assert outcome.state == AttemptResult.DEAD
    assert "no `current` list" in str(outcome.error)
    (event,) = events(db_url)
    assert (event["state"], event["attempts"]) == (EventState.DEAD, 1)


def test_a_value_the_database_refuses_when_the_batch_is_written_fails_only_its_event(
    db_url: str,
) -> None:
    """A subscription status longer than its column: PostgreSQL refuses the batch's one
    write of subscriptions. The batch runs again one event per savepoint; only that event
    fails (SQLite stores the long text, so there every event applies)."""
    shops = [f"shop-{n}.myshopify.com" for n in range(3)]
    statuses = ["ACTIVE", "X" * 40, "PENDING"]
    sub = "app_subscriptions/update"
    store_events(
        db_url,
        [
            _hook(sub, s, n, _subscription(s, 1, status, n))
            for n, (s, status) in enumerate(zip(shops, statuses, strict=True))
        ],
    )

    outcomes = _in_batches(db_url)

    if db_url.startswith("postgresql"):
        assert [o.state for o in outcomes] == ["processed", "retrying", "processed"]
        assert {s["status"] for s in table_rows(db_url, Subscription)} == {"ACTIVE", "PENDING"}
    else:
        assert [o.state for o in outcomes] == ["processed"] * 3


def test_events_a_transaction_let_go_are_applied_later_not_taken_for_duplicates(
    db_url: str,
) -> None:
    """A transaction cut short by its time bound entered every event of the batch in the
    ledger before applying them; those it let go are taken out again, so the next
    transaction applies them."""
    shops = [f"shop-{n}.myshopify.com" for n in range(6)]
    store_events(db_url, [_hook("app/scopes_update", s, n) for n, s in enumerate(shops)])
    ticks = iter(range(1000))

    def monotonic() -> float:
        return next(ticks) * 0.01  # 10 ms per reading: the 20 ms bound lets two events in

    batch = claimed(db_url)
    engine = make_engine(db_url)
    try:
        first = batches.process_batch(engine, batch, policy=POLICY, monotonic=monotonic)
        rest = batches.process_batch(engine, batch[len(first) :], policy=POLICY, max_seconds=60)
    finally:
        engine.dispose()

    assert 0 < len(first) < len(batch)
    assert [o.state for o in first + rest] == [AttemptResult.PROCESSED] * len(batch)
    assert {s["scopes"] for s in table_rows(db_url, Shop)} == {
        f"read_orders,scope_{n}" for n in range(6)
    }


def test_when_the_first_of_two_deliveries_of_one_action_fails_the_second_applies_it(
    db_url: str,
) -> None:
    """The same merchant action twice in a batch, the first delivery failing: the second is
    applied (not ignored as a duplicate of one that never applied)."""
    shop = "shop.myshopify.com"
    hooks = [_hook("app/uninstalled", shop, n, event_id="one-action") for n in (1, 2)]
    store_events(db_url, hooks)
    first = hooks[0].webhook_id

    def staged(data: AppData, event: ClaimedEvent, now: datetime) -> str | None:
        if event.webhook_id == first:
            raise RuntimeError("boom")
        return app_uninstalled(data, event, now)

    outcomes = _in_batches(db_url, {**HANDLERS, "app/uninstalled": Staging(staged)})

    assert sorted(o.state for o in outcomes) == ["processed", "retrying"]
    by_id = {e["webhook_id"]: e for e in events(db_url)}
    assert by_id[first]["state"] == EventState.RETRYING
    assert by_id[hooks[1].webhook_id]["state"] == EventState.PROCESSED
    assert not table_rows(db_url, Shop)[0]["installed"]
