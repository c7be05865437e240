"""One function per topic, applying a webhook to the app's own data (SPEC P4, P5).

Every handler runs inside the caller's transaction (the worker commits it together with the
exactly-once ledger entry and the event's new state), is idempotent, and returns None when it
applied the event or a short note saying why it deliberately did not (a stale event, P5).
Handlers never log personal data: they log nothing at all; the worker logs the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from timedify.ingest import webhooks
from timedify.logs import pseudonym
from timedify.processing.redaction import Customer, load, scrub
from timedify.processing.retry import Permanent
from timedify.processing.staging import AppData, Direct
from timedify.records import ClaimedEvent
from timedify.store import appdata, compliance

Handler = Callable[[Connection, ClaimedEvent, datetime], str | None]
StagedHandler = Callable[[AppData, ClaimedEvent, datetime], str | None]
COMPLIANCE_DEADLINE = timedelta(days=30)
NO_CUSTOMER_DATA = (
    "Timedify stores no customer records. The only data about customers it can hold is inside "
    "stored webhook payloads, listed here."
)


class InvalidPayload(Permanent, ValueError):
    """The payload lacks what the topic's handler needs: no retry can apply it, so it is a
    dead letter at once (the stored payload is what Shopify signed and never changes)."""


@dataclass(frozen=True)
class Staging:
    """A handler that runs on `AppData`: read and written at once when called with a connection
    (a `Handler`), or staged with the rest of a batch (processing/staging.py) by the worker."""

    staged: StagedHandler
    # The subscriptions an event's handler reads, so that a batch can read them all at once.
    subscriptions: Callable[[ClaimedEvent], list[str]] = lambda _event: []

    def __call__(self, conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
        return self.staged(Direct(conn), event, now)


def app_uninstalled(data: AppData, event: ClaimedEvent, now: datetime) -> str | None:
    """Delete the shop's sessions (and access tokens) and mark it uninstalled."""
    at = event_time(event, None)
    if stale := _stale_after_redaction(data, event.shop_domain, at):
        return stale
    shop = data.get_shop(event.shop_domain)
    if shop is not None and shop["installed_at"] is not None and shop["installed_at"] > at:
        return "stale: the shop installed the app again after this uninstall"
    data.delete_sessions(event.shop_domain)
    previous = shop["uninstalled_at"] if shop is not None else None
    data.upsert_shop(
        event.shop_domain,
        now,
        installed=False,
        uninstalled_at=max(at, previous) if previous else at,
    )
    return None


def app_scopes_update(data: AppData, event: ClaimedEvent, now: datetime) -> str | None:
    """Record the shop's currently granted scopes on the shop and its sessions."""
    payload = _object(event)
    current = payload.get("current")
    if not isinstance(current, list):
        raise InvalidPayload("app/scopes_update payload has no `current` list")
    at = event_time(event, payload)
    if stale := _stale_after_redaction(data, event.shop_domain, at):
        return stale
    shop = data.get_shop(event.shop_domain)
    if shop is not None:
        if shop["scopes_updated_at"] is not None and shop["scopes_updated_at"] > at:
            return "stale: newer scopes are already recorded"
        if not shop["installed"] and shop["uninstalled_at"] and shop["uninstalled_at"] > at:
            return "stale: the shop uninstalled the app after this change"
    scopes = ",".join(sorted({str(s).strip() for s in current if str(s).strip()}))
    data.set_session_scopes(event.shop_domain, scopes, now)
    data.upsert_shop(event.shop_domain, now, scopes=scopes, scopes_updated_at=at)
    return None


def app_subscriptions_update(data: AppData, event: ClaimedEvent, now: datetime) -> str | None:
    """Mirror the subscription; the shop's plan status follows its newest subscription."""
    sub = _object(event).get("app_subscription")
    if not isinstance(sub, dict) or not sub.get("admin_graphql_api_id"):
        raise InvalidPayload("app_subscriptions/update payload has no `app_subscription` id")
    at = event_time(event, sub)
    if stale := _stale_after_redaction(data, event.shop_domain, at):
        return stale
    updated = webhooks.parse_timestamp(_str(sub.get("updated_at")))
    existing = data.get_subscription(str(sub["admin_graphql_api_id"]))
    if existing is not None and _newer(existing, at, updated):
        return "stale: a newer state of this subscription is already recorded"
    data.upsert_subscription(
        {
            "id": str(sub["admin_graphql_api_id"]),
            "shop_domain": event.shop_domain,
            "name": _str(sub.get("name")),
            "status": _str(sub.get("status")) or "UNKNOWN",
            "shopify_created_at": webhooks.parse_timestamp(_str(sub.get("created_at"))),
            "shopify_updated_at": updated,
            "triggered_at": at,
            "updated_at": now,
        },
    )
    data.follow_plan(event.shop_domain, now)
    return None


def subscription_ids(event: ClaimedEvent) -> list[str]:
    """The subscription an `app_subscriptions/update` names, if its payload is readable."""
    try:
        sub = _object(event).get("app_subscription")
    except InvalidPayload:
        return []
    found = sub.get("admin_graphql_api_id") if isinstance(sub, dict) else None
    return [str(found)] if found else []


def customers_data_request(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
    """Open the compliance request (30-day deadline), produce its report and close it."""
    payload = _object(event)
    customer = _customer(payload, event.topic)
    mentioned = [
        {"webhook_id": webhook_id, "topic": topic}
        for pk, webhook_id, topic, stored in appdata.payloads_of_shop(conn, event.shop_domain)
        if pk != event.id and scrub(load(stored), customer)[1]
    ]
    report = {
        "customer_records": 0,
        "statement": NO_CUSTOMER_DATA,
        "webhook_payloads_mentioning_customer": mentioned,
    }
    request = payload.get("data_request")
    reference = customer.reference(event.shop_domain)
    _record_compliance(
        conn,
        event,
        now,
        customer_ref=reference,
        data_request_ref=_str(request.get("id")) if isinstance(request, dict) else None,
        report=report,
    )
    if compliance.customer_redacted(conn, event.shop_domain, reference):
        # Kept for this request while the redaction was applied: the redaction still holds.
        _forget_customer(conn, event, customer)
    return None


def customers_redact(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
    """Scrub the customer from every stored payload of the shop (this one included) and
    replace identifiers that are not identifier-shaped (personal data) on its events."""
    customer = _customer(_object(event), event.topic)
    scrubbed = _forget_customer(conn, event, customer)
    _record_compliance(
        conn,
        event,
        now,
        customer_ref=customer.reference(event.shop_domain),
        report={"customer_records": 0, "webhook_payloads_scrubbed": scrubbed},
    )
    return None


def _forget_customer(conn: Connection, event: ClaimedEvent, customer: Customer) -> int:
    """Scrub `customer` from the shop's payloads; how many changed.

    Another compliance request about the same customer still waiting to be applied keeps its
    payload: without the customer it names it could never be applied (nor get its record);
    it scrubs the shop itself when applied.
    """
    pending = compliance.pending_customer_requests(conn, event.shop_domain) - {event.id}
    scrubbed = 0
    for pk, _webhook_id, _topic, stored in list(appdata.payloads_of_shop(conn, event.shop_domain)):
        payload = load(stored)
        if pk in pending and _names(payload, customer):
            continue
        clean, changed = scrub(payload, customer)
        if changed:
            appdata.set_payload(conn, pk, orjson.dumps(clean))
            scrubbed += 1
    _forget_identifiers(conn, event.shop_domain)
    return scrubbed


def _forget_identifiers(conn: Connection, shop: str) -> None:
    """The one rule of log lines for the ids kept on the shop's events and in the ledger."""
    for pk, webhook_id, event_id, api_version in compliance.identifiers_of_shop(conn, shop):
        kept = {"webhook_id": webhook_id, "event_id": event_id, "api_version": api_version}
        clean = {name: pseudonym(value) for name, value in kept.items()}
        changed = {name: value for name, value in clean.items() if value != kept[name]}
        if changed:
            ledger = (event_id or webhook_id, str(clean["event_id"] or clean["webhook_id"]))
            compliance.replace_identifiers(conn, pk, changed, ledger)


def _names(payload: Any, customer: Customer) -> bool:
    named = payload.get("customer") if isinstance(payload, dict) else None
    return isinstance(named, dict) and customer.is_me(named)


def shop_redact(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
    """Delete everything held for the shop; keep only the record that this was done, and when."""
    appdata.erase_shop(
        conn, event.shop_domain, keep_event=event.id, received_before=event.received_at
    )
    appdata.set_payload(conn, event.id, b"{}")
    # Never later than the receipt: a redaction dated ahead would make the shop's next real
    # events look older than the erasure (its payload has no time Shopify signed).
    at = min(event_time(event, None), event.received_at)
    _record_compliance(conn, event, now, received_at=at, report=None)
    return None


HANDLERS: Mapping[str, Handler] = {
    "app/uninstalled": Staging(app_uninstalled),
    "app/scopes_update": Staging(app_scopes_update),
    "app_subscriptions/update": Staging(app_subscriptions_update, subscription_ids),
    "customers/data_request": customers_data_request,
    "customers/redact": customers_redact,
    "shop/redact": shop_redact,
}


# How far ahead of our receipt an event's time may be (clocks differ a little, never by days).
CLOCK_SKEW = timedelta(minutes=5)


def event_time(event: ClaimedEvent, payload: Any) -> datetime:
    """When the merchant action happened (P5): what Shopify signed where there is one (the
    payload's `updated_at`), else `X-Shopify-Triggered-At`, else when we received it.

    The header is not covered by the signature: a captured delivery replayed with another
    header must not reorder anything the payload dates. Either way the time is never later
    than the receipt plus `CLOCK_SKEW`, so a wrong or forged future time cannot make every
    later real event of the shop look stale."""
    at = None
    if isinstance(payload, dict):
        at = webhooks.parse_timestamp(_str(payload.get("updated_at")))
    at = at or event.triggered_at or event.received_at
    return min(at, event.received_at + CLOCK_SKEW)


def _record_compliance(
    conn: Connection,
    event: ClaimedEvent,
    now: datetime,
    *,
    report: dict[str, Any] | None,
    customer_ref: str | None = None,
    data_request_ref: str | None = None,
    received_at: datetime | None = None,
) -> None:
    start = received_at or event.received_at
    appdata.add_compliance_request(
        conn,
        {
            "kind": event.topic,
            "shop_domain": event.shop_domain,
            "customer_ref": customer_ref,
            "data_request_ref": data_request_ref,
            "event_pk": event.id,
            "received_at": start,
            "deadline_at": start + COMPLIANCE_DEADLINE,
            "status": "completed",
            "completed_at": now,
            "report": orjson.dumps(report).decode() if report is not None else None,
        },
    )


def _stale_after_redaction(data: AppData, shop: str, at: datetime) -> str | None:
    redacted = data.redacted_at(shop)
    if redacted is not None and redacted >= at:
        return "stale: the shop's data was erased (shop/redact) after this event"
    return None


def _newer(existing: Any, at: datetime, updated: datetime | None) -> bool:
    if existing["triggered_at"] is not None and existing["triggered_at"] > at:
        return True
    stored = existing["shopify_updated_at"]
    return stored is not None and updated is not None and stored > updated


def _object(event: ClaimedEvent) -> dict[str, Any]:
    payload = load(event.payload)
    if not isinstance(payload, dict):
        raise InvalidPayload(f"{event.topic} payload is not a JSON object")
    return payload


def _customer(payload: dict[str, Any], topic: str) -> Customer:
    customer = Customer.from_payload(payload)
    if not customer.known:
        raise InvalidPayload(f"{topic} payload names no customer")
    return customer


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
