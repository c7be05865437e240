"""What the customer compliance handlers read and rewrite besides payloads (SPEC P4).

The identifiers a delivery came with are kept on its row and in the exactly-once ledger; those
that are not identifier-shaped (an e-mail, a phone put in a header) are personal data and are
replaced when the customer is redacted. Pending compliance events are found here so that one
redaction does not scrub another's request before it is applied.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, select, update

from timedify.models import AppliedEvent, ComplianceRequest, WebhookEvent
from timedify.store.reports import UNAPPLIED_STATES

CUSTOMER_TOPICS = ("customers/redact", "customers/data_request")


def pending_customer_requests(conn: Connection, domain: str) -> set[int]:
    """Ids of the shop's customer compliance events not applied yet (queued, failing, dead)."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.id).where(
            e.shop_domain == domain, e.topic.in_(CUSTOMER_TOPICS), e.state.in_(UNAPPLIED_STATES)
        )
    )
    return {int(row[0]) for row in rows}


def customer_redacted(conn: Connection, domain: str, customer_ref: str) -> bool:
    """Whether a `customers/redact` of this customer (by its reference) has been applied."""
    c = ComplianceRequest
    found = conn.execute(
        select(c.id)
        .where(c.shop_domain == domain, c.kind == "customers/redact")
        .where(c.customer_ref == customer_ref)
        .limit(1)
    ).first()
    return found is not None


def identifiers_of_shop(
    conn: Connection, domain: str
) -> list[tuple[int, str, str | None, str | None]]:
    """(id, webhook id, event id, API version) of every stored event of the shop."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.id, e.webhook_id, e.event_id, e.api_version).where(e.shop_domain == domain)
    )
    return [(int(r[0]), str(r[1]), r[2], r[3]) for r in rows]


def replace_identifiers(
    conn: Connection, event_pk: int, values: Mapping[str, str | None], ledger: tuple[str, str]
) -> None:
    """Set the event's `values` (of webhook_id, event_id, api_version); its ledger entry, if
    any, moves from the old key to the new one (`ledger`: old, new)."""
    conn.execute(update(WebhookEvent).where(WebhookEvent.id == event_pk).values(**values))
    old, new = ledger
    if new != old:
        a = AppliedEvent
        conn.execute(
            update(a).where(a.event_pk == event_pk, a.event_key == old).values(event_key=new)
        )
