"""Every SQL statement on the app's own data (shops, sessions, subscriptions, compliance).

Plain functions on the caller's connection and transaction; the handlers decide, this module
reads and writes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    bindparam,
    delete,
    desc,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from timedify.models import (
    ComplianceRequest,
    EventState,
    Shop,
    ShopSession,
    Subscription,
    WebhookEvent,
)

SHOP_REDACT = "shop/redact"


# The statements every handler runs are built once with bound parameters: building a
# SQLAlchemy statement costs more than running it, and the worker's drain rate is per-event work.
_GET_SHOP = select(Shop.__table__).where(Shop.domain == bindparam("domain"))
_DELETE_SESSIONS = delete(ShopSession).where(ShopSession.shop_domain == bindparam("domain"))
_SET_SCOPES = (
    update(ShopSession)
    .where(ShopSession.shop_domain == bindparam("domain"))
    .values(scope=bindparam("scopes"), updated_at=bindparam("now"))
)


@functools.cache
def _upsert(dialect: str, table: Any, key: str, columns: frozenset[str]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET each of `columns` to the proposed value."""
    stmt: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[key], set_={c: stmt.excluded[c] for c in sorted(columns)}
    )


def get_shop(conn: Connection, domain: str) -> RowMapping | None:
    return conn.execute(_GET_SHOP, {"domain": domain}).mappings().first()


def upsert_shop(conn: Connection, domain: str, now: datetime, **values: Any) -> None:
    """Create the shop row if needed and set `values` on it."""
    row = {"domain": domain, "installed": True, "created_at": now, "updated_at": now, **values}
    stmt = _upsert(conn.dialect.name, Shop.__table__, "domain", frozenset([*values, "updated_at"]))
    conn.execute(stmt, row)


def delete_sessions(conn: Connection, domain: str) -> int:
    """Remove the shop's sessions and with them its access tokens."""
    return int(conn.execute(_DELETE_SESSIONS, {"domain": domain}).rowcount)


def set_session_scopes(conn: Connection, domain: str, scopes: str, now: datetime) -> None:
    conn.execute(_SET_SCOPES, {"domain": domain, "scopes": scopes, "now": now})


def get_subscription(conn: Connection, subscription_id: str) -> RowMapping | None:
    s = Subscription.__table__
    return conn.execute(select(s).where(s.c.id == subscription_id)).mappings().first()


def upsert_subscription(conn: Connection, values: dict[str, Any]) -> None:
    columns = frozenset(k for k in values if k != "id")
    conn.execute(_upsert(conn.dialect.name, Subscription.__table__, "id", columns), values)


def current_plan_status(conn: Connection, domain: str) -> str | None:
    """The status of the shop's most recently changed subscription."""
    s = Subscription
    return conn.execute(
        select(s.status)
        .where(s.shop_domain == domain)
        .order_by(desc(s.triggered_at), desc(s.shopify_updated_at))
        .limit(1)
    ).scalar()


_REDACTED_AT = select(func.max(ComplianceRequest.received_at)).where(
    ComplianceRequest.shop_domain == bindparam("domain"), ComplianceRequest.kind == SHOP_REDACT
)


def redacted_at(conn: Connection, domain: str) -> datetime | None:
    """When the shop's data was last erased by `shop/redact`, if ever."""
    return conn.execute(_REDACTED_AT, {"domain": domain}).scalar()


def add_compliance_request(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(insert(ComplianceRequest).values(values).returning(ComplianceRequest.id))
    return int(result.scalar_one())


def payloads_of_shop(conn: Connection, domain: str) -> Iterator[tuple[int, str, str, bytes]]:
    """(id, webhook id, topic, payload) of every stored event of the shop."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.id, e.webhook_id, e.topic, e.payload).where(e.shop_domain == domain).order_by(e.id)
    )
    for row in rows:
        yield int(row[0]), str(row[1]), str(row[2]), bytes(row[3])


def set_payload(conn: Connection, event_pk: int, payload: bytes) -> None:
    conn.execute(update(WebhookEvent).where(WebhookEvent.id == event_pk).values(payload=payload))


def erase_shop(
    conn: Connection, domain: str, *, keep_event: int, received_before: datetime
) -> None:
    """Delete everything held for the shop (P4 shop/redact), up to the redaction's own event.

    Events already applied keep their row with an empty payload: a record without any content
    that keeps `/health/webhooks` and the metrics honest until retention removes it. Events not
    applied (pending, dead) are deleted with their attempts and dead letters (ON DELETE CASCADE):
    they are older than the redaction and must never be applied.
    """
    e = WebhookEvent
    conn.execute(delete(ShopSession).where(ShopSession.shop_domain == domain))
    conn.execute(delete(Subscription).where(Subscription.shop_domain == domain))
    conn.execute(delete(Shop).where(Shop.domain == domain))
    conn.execute(delete(ComplianceRequest).where(ComplianceRequest.shop_domain == domain))
    earlier = (e.shop_domain == domain, e.id != keep_event, e.received_at <= received_before)
    done = e.state.in_([EventState.PROCESSED, EventState.IGNORED])
    conn.execute(update(e).where(*earlier, done).values(payload=b"{}", last_error=None))
    conn.execute(delete(e).where(*earlier, ~done))
