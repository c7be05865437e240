"""The SQL of billing (S7) and reconciliation (S8): a shop's installation as we mirror it.

Plain functions on the caller's connection and transaction. Rows are written through
`appdata`'s upserts where the webhook handlers write the same columns, so both paths agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from timedify.models import Shop, Subscription
from timedify.store import appdata

# What a subscription Shopify no longer lists as active is recorded as: the exact status
# (cancelled, expired, declined, frozen) is not in `activeSubscriptions`.
NOT_ACTIVE = "INACTIVE"


def billing_of(conn: Connection, domain: str) -> Mapping[str, Any] | None:
    """The shop's recorded billing state: subscription_active, subscription_checked_at,
    plan_status, and the newest subscription's name and status (None: no such shop)."""
    row = conn.execute(
        select(Shop.subscription_active, Shop.subscription_checked_at, Shop.plan_status).where(
            Shop.domain == domain
        )
    ).first()
    if row is None:
        return None
    newest = conn.execute(
        select(Subscription.name, Subscription.status)
        .where(Subscription.shop_domain == domain)
        .order_by(Subscription.triggered_at.desc(), Subscription.updated_at.desc())
        .limit(1)
    ).first()
    return {
        **row._mapping,
        "name": newest.name if newest else None,
        "status": newest.status if newest else None,
    }


def subscription_statuses(conn: Connection, domain: str) -> dict[str, str]:
    """id -> status of the shop's subscriptions recorded as ACTIVE."""
    rows = conn.execute(
        select(Subscription.id, Subscription.status).where(
            Subscription.shop_domain == domain, Subscription.status == "ACTIVE"
        )
    )
    return {str(r.id): str(r.status) for r in rows}


def mirror_subscriptions(
    conn: Connection, domain: str, listed: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Record Shopify's active subscriptions as read at `now` (newer than any webhook triggered
    before, as P5 orders them), mark the ones it no longer lists, and set the plan status."""
    ids = {str(sub["id"]) for sub in listed}
    for sub in listed:
        appdata.upsert_subscription(
            conn,
            {
                "id": str(sub["id"]),
                "shop_domain": domain,
                "name": sub.get("name"),
                "status": str(sub.get("status") or "UNKNOWN"),
                "triggered_at": now,
                "updated_at": now,
            },
        )
    gone = [i for i in subscription_statuses(conn, domain) if i not in ids]
    if gone:
        conn.execute(
            update(Subscription)
            .where(Subscription.id.in_(gone))
            .values(status=NOT_ACTIVE, triggered_at=now, updated_at=now)
        )
    status = appdata.current_plan_status(conn, domain)
    appdata.upsert_shop(conn, domain, now, plan_status=status)


def record_billing(conn: Connection, domain: str, active: bool, checked_at: datetime) -> None:
    appdata.upsert_shop(
        conn, domain, checked_at, subscription_active=active, subscription_checked_at=checked_at
    )


def installed_shops(conn: Connection, only: Sequence[str] | None = None) -> list[Mapping[str, Any]]:
    """The shops to reconcile: every installed one, or exactly `only` (installed or not)."""
    query = select(Shop.domain, Shop.installed, Shop.scopes).order_by(Shop.domain)
    if only is not None:
        query = query.where(Shop.domain.in_(list(only)))
    else:
        query = query.where(Shop.installed.is_(True))
    return [dict(row._mapping) for row in conn.execute(query)]


def set_scopes(conn: Connection, domain: str, scopes: str, now: datetime) -> None:
    """The granted scopes, on the shop and its sessions (as app/scopes_update records them)."""
    appdata.set_session_scopes(conn, domain, scopes, now)
    appdata.upsert_shop(conn, domain, now, scopes=scopes, scopes_updated_at=now)


def mark_installed(conn: Connection, domain: str, now: datetime) -> None:
    appdata.upsert_shop(conn, domain, now, installed=True)


def mark_uninstalled(conn: Connection, domain: str, now: datetime) -> None:
    """As app/uninstalled does: the sessions (and tokens) go, the shop is marked uninstalled."""
    appdata.delete_sessions(conn, domain)
    appdata.upsert_shop(conn, domain, now, installed=False, uninstalled_at=now)


def mark_synced(conn: Connection, domain: str, now: datetime) -> None:
    conn.execute(update(Shop).where(Shop.domain == domain).values(synced_at=now))


def claim_due(conn: Connection, synced_before: datetime, now: datetime, limit: int) -> list[str]:
    """Installed shops last reconciled before `synced_before` (or never), at most `limit`,
    each claimed by setting its `synced_at` to `now` in a conditional UPDATE: several workers
    running the daily sync at once each get different shops."""
    due = or_(Shop.synced_at.is_(None), Shop.synced_at < synced_before)
    candidates = conn.execute(
        select(Shop.domain)
        .where(Shop.installed.is_(True), due)
        .order_by(Shop.synced_at.is_not(None), Shop.synced_at, Shop.domain)
        .limit(limit)
    ).scalars()
    claimed = []
    for domain in list(candidates):
        result = conn.execute(
            update(Shop).where(and_(Shop.domain == domain, due)).values(synced_at=now)
        )
        if result.rowcount == 1:
            claimed.append(str(domain))
    return claimed
