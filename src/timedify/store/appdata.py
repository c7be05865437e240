"""Every SQL statement on the app's own data (shops, sessions, subscriptions, compliance).

Plain functions on the caller's connection and transaction; the handlers decide, this module
reads and writes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    desc,
    func,
    insert,
    select,
    update,
)

from timedify.models import (
    ComplianceRequest,
    EventState,
    Shop,
    ShopSession,
    Subscription,
    WebhookEvent,
)
from timedify.store.prepared import Prepared, dialect_insert

SHOP_REDACT = "shop/redact"


# The statements every handler runs are built once with bound parameters and run on the raw
# DBAPI cursor (`prepared`): SQLAlchemy's execution layer costs several times what the database
# spends on one of these, and the worker's drain rate is per-event work.
_GET_SHOP = Prepared(select(Shop.__table__).where(Shop.domain == bindparam("domain")))
_DELETE_SESSIONS = Prepared(
    delete(ShopSession).where(ShopSession.shop_domain == bindparam("domain"))
)
_SET_SCOPES = Prepared(
    update(ShopSession)
    .where(ShopSession.shop_domain == bindparam("domain"))
    .values(scope=bindparam("scopes"), updated_at=bindparam("now"))
)


@functools.cache
def _upsert(
    dialect: str, table: Any, key: str, columns: frozenset[str], given: frozenset[str]
) -> Prepared:
    """INSERT the `given` columns ... ON CONFLICT (key) DO UPDATE SET each of `columns`."""
    stmt = dialect_insert(dialect, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key], set_={c: stmt.excluded[c] for c in sorted(columns)}
    )
    return Prepared(stmt, sorted(given))


def get_shop(conn: Connection, domain: str) -> Mapping[str, Any] | None:
    return _GET_SHOP.first(conn, {"domain": domain})


def upsert_shop(conn: Connection, domain: str, now: datetime, **values: Any) -> None:
    """Create the shop row if needed and set `values` on it."""
    row = {"domain": domain, "installed": True, "created_at": now, "updated_at": now, **values}
    columns = frozenset([*values, "updated_at"])
    _upsert(conn.dialect.name, Shop.__table__, "domain", columns, frozenset(row)).execute(conn, row)


def delete_sessions(conn: Connection, domain: str) -> int:
    """Remove the shop's sessions and with them its access tokens."""
    return _DELETE_SESSIONS.execute(conn, {"domain": domain})


def set_session_scopes(conn: Connection, domain: str, scopes: str, now: datetime) -> None:
    _SET_SCOPES.execute(conn, {"domain": domain, "scopes": scopes, "now": now})


_S = Subscription
_GET_SUBSCRIPTION = Prepared(select(_S.__table__).where(_S.id == bindparam("id")))
_PLAN_STATUS = Prepared(
    select(_S.status)
    .where(_S.shop_domain == bindparam("domain"))
    .order_by(desc(_S.triggered_at), desc(_S.shopify_updated_at))
    .limit(1)
)


def get_subscription(conn: Connection, subscription_id: str) -> Mapping[str, Any] | None:
    return _GET_SUBSCRIPTION.first(conn, {"id": subscription_id})


def upsert_subscription(conn: Connection, values: dict[str, Any]) -> None:
    columns = frozenset(k for k in values if k != "id")
    table = Subscription.__table__
    _upsert(conn.dialect.name, table, "id", columns, frozenset(values)).execute(conn, values)


def current_plan_status(conn: Connection, domain: str) -> str | None:
    """The status of the shop's most recently changed subscription."""
    status: str | None = _PLAN_STATUS.scalar(conn, {"domain": domain})
    return status


_REDACTED_AT = Prepared(
    select(func.max(ComplianceRequest.received_at)).where(
        ComplianceRequest.shop_domain == bindparam("domain"), ComplianceRequest.kind == SHOP_REDACT
    )
)


def redacted_at(conn: Connection, domain: str) -> datetime | None:
    """When the shop's data was last erased by `shop/redact`, if ever."""
    redacted: datetime | None = _REDACTED_AT.scalar(conn, {"domain": domain})
    return redacted


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
