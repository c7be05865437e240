"""Synthetic (smoke-test) events: their states, and removing them with what they left (SPEC O7).

Only rows flagged `synthetic`, and the reserved shop's data, are ever read or deleted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from timedify.models import (
    AppliedEvent,
    ComplianceRequest,
    Shop,
    ShopSession,
    Subscription,
    WebhookEvent,
)


def states(conn: Connection, webhook_ids: Sequence[str]) -> dict[str, str]:
    """webhook id -> state, for synthetic events only."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.webhook_id, e.state).where(e.webhook_id.in_(webhook_ids), e.synthetic.is_(True))
    )
    return {str(webhook_id): str(state) for webhook_id, state in rows}


def remove(conn: Connection, webhook_ids: Sequence[str], shop: str) -> int:
    """Delete the synthetic events and the synthetic `shop`'s data; return the events deleted."""
    e = WebhookEvent
    pks = list(
        conn.execute(
            select(e.id).where(e.webhook_id.in_(webhook_ids), e.synthetic.is_(True))
        ).scalars()
    )
    if pks:
        conn.execute(delete(AppliedEvent).where(AppliedEvent.event_pk.in_(pks)))
        conn.execute(delete(ComplianceRequest).where(ComplianceRequest.event_pk.in_(pks)))
        conn.execute(delete(e).where(e.id.in_(pks)))  # attempts and dead letters cascade
    conn.execute(delete(ComplianceRequest).where(ComplianceRequest.shop_domain == shop))
    conn.execute(delete(Subscription).where(Subscription.shop_domain == shop))
    conn.execute(delete(ShopSession).where(ShopSession.shop_domain == shop))
    conn.execute(delete(Shop).where(Shop.domain == shop))
    return len(pks)
