"""Every SQL statement on the app's own data (shops, sessions, subscriptions, compliance).

Plain functions on the caller's connection and transaction; the handlers decide, this module
reads and writes.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping
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
from timedify.store import bulk
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


# A batch of events reads what its handlers need with one statement per table and writes what
# they changed with one statement (or one pipelined executemany) per kind of change, whatever the
# batch's size: on PostgreSQL every statement is a round trip (processing/staging.py).
def shops_by_domain(conn: Connection, domains: Collection[str]) -> dict[str, dict[str, Any]]:
    """The shop rows of `domains` that exist, by domain."""
    return _rows_by_key(conn, Shop, "domain", domains)


def subscriptions_by_id(conn: Connection, ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The subscription rows of `ids` that exist, by id."""
    return _rows_by_key(conn, Subscription, "id", ids)


def _rows_by_key(
    conn: Connection, model: Any, key: str, values: Collection[str]
) -> dict[str, dict[str, Any]]:
    if not values:
        return {}
    result = conn.execute(_select_by_key(model, key, conn.dialect.name), {"values": list(values)})
    names = list(result.keys())
    at = names.index(key)
    # From the plain rows: a dict of a row's mapping view reads it key by key, ~3 x slower.
    return {row[at]: dict(zip(names, row, strict=True)) for row in result}


@functools.cache
def _select_by_key(model: Any, key: str, dialect: str) -> Any:
    table = model.__table__
    return select(table).where(bulk.among(table.c[key], "values", dialect))


def redacted_at_by_shop(conn: Connection, domains: Collection[str]) -> dict[str, datetime]:
    """When each of `domains` that was ever erased by `shop/redact` was last erased."""
    if not domains:
        return {}
    rows = conn.execute(_redacted_at_by_shop(conn.dialect.name), {"domains": list(domains)})
    return {str(domain): at for domain, at in rows if at is not None}


@functools.cache
def _redacted_at_by_shop(dialect: str) -> Any:
    c = ComplianceRequest
    return (
        select(c.shop_domain, func.max(c.received_at))
        .where(bulk.among(c.__table__.c.shop_domain, "domains", dialect), c.kind == SHOP_REDACT)
        .group_by(c.shop_domain)
    )


def upsert_shops(conn: Connection, changes: Mapping[str, Mapping[str, Any]], now: datetime) -> None:
    """`upsert_shop` for many shops: each domain with the columns set on it."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for domain, values in changes.items():
        row = {"domain": domain, "installed": True, "created_at": now, "updated_at": now, **values}
        groups.setdefault(frozenset([*values, "updated_at"]), []).append(row)
    for columns, rows in groups.items():
        if bulk.is_postgres(conn):
            keys = _ordered(rows)
            rows = [{key: row.get(key) for key in keys} for row in rows]
            bulk.insert_rows(conn, Shop, rows, conflict=_set_excluded("domain", columns))
            continue
        given = frozenset().union(*rows)
        _upsert(conn.dialect.name, Shop.__table__, "domain", columns, given).executemany(conn, rows)


def delete_sessions_of(conn: Connection, domains: Collection[str]) -> None:
    """`delete_sessions` for many shops."""
    if not domains:
        return
    if bulk.is_postgres(conn):
        conn.execute(_delete_sessions_of(conn.dialect.name), {"domains": list(domains)})
    else:
        _DELETE_SESSIONS.executemany(conn, [{"domain": domain} for domain in domains])


@functools.cache
def _delete_sessions_of(dialect: str) -> Any:
    domain = ShopSession.__table__.c.shop_domain
    return delete(ShopSession).where(bulk.among(domain, "domains", dialect))


def set_sessions_scopes(conn: Connection, scopes: Mapping[str, str], now: datetime) -> None:
    """`set_session_scopes` for many shops: domain -> scopes."""
    if not scopes:
        return
    if bulk.is_postgres(conn):
        rows = [{"shop_domain": d, "scope": s, "updated_at": now} for d, s in scopes.items()]
        assign = "scope = v.scope, updated_at = v.updated_at"
        bulk.update_rows(conn, ShopSession, rows, match=("shop_domain",), assign=assign)
        return
    rows = [{"domain": domain, "scopes": value, "now": now} for domain, value in scopes.items()]
    _SET_SCOPES.executemany(conn, rows)


def upsert_subscriptions(conn: Connection, rows: Collection[dict[str, Any]]) -> None:
    """`upsert_subscription` for many rows with the same columns."""
    if not rows:
        return
    given = frozenset().union(*rows)
    table = Subscription.__table__
    if bulk.is_postgres(conn):
        keys = sorted(given)  # one SQL text per set of columns
        full = [{key: row.get(key) for key in keys} for row in rows]
        bulk.insert_rows(conn, Subscription, full, conflict=_set_excluded("id", given - {"id"}))
        return
    upsert = _upsert(conn.dialect.name, table, "id", given - {"id"}, given)
    upsert.executemany(conn, list(rows))


def _ordered(rows: Collection[Mapping[str, Any]]) -> list[str]:
    """Every key of `rows`, in a stable order (one SQL text per set of columns)."""
    return sorted(frozenset().union(*rows))


def _set_excluded(key: str, columns: Collection[str]) -> str:
    """The ON CONFLICT clause of an upsert: on `key`, set each of `columns` to the new value."""
    assign = ", ".join(f"{column} = EXCLUDED.{column}" for column in sorted(columns))
    return f"({key}) DO UPDATE SET {assign}"  # names from the models  # nosec B608


def _plan_of_shop() -> Any:
    return (
        select(_S.status)
        .where(_S.shop_domain == Shop.domain)
        .order_by(desc(_S.triggered_at), desc(_S.shopify_updated_at))
        .limit(1)
        .scalar_subquery()
    )


_FOLLOW_PLAN = Prepared(
    update(Shop)
    .where(Shop.domain == bindparam("domain"))
    .values(plan_status=_plan_of_shop(), updated_at=bindparam("now"))
)


def follow_plans(conn: Connection, domains: Collection[str], now: datetime) -> None:
    """Set each existing shop's plan status to that of its most recently changed subscription
    (`current_plan_status`), in the database, for many shops at once."""
    if not domains:
        return
    if bulk.is_postgres(conn):
        conn.execute(_follow_plans(conn.dialect.name), {"domains": list(domains), "now": now})
    else:
        _FOLLOW_PLAN.executemany(conn, [{"domain": domain, "now": now} for domain in domains])


@functools.cache
def _follow_plans(dialect: str) -> Any:
    return (
        update(Shop)
        .where(bulk.among(Shop.__table__.c.domain, "domains", dialect))
        .values(plan_status=_plan_of_shop(), updated_at=bindparam("now"))
    )


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
