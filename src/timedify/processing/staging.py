"""The app's data as the hot handlers see it: read and written at once, or staged for a batch.

The handlers of the topics a merchant base sends all day (uninstalls, scope and subscription
updates) read a shop or a subscription, decide, and write a few rows. Run one statement at a
time, that is five or six statements per event, and on PostgreSQL every statement is a round
trip: the worker's drain rate was the network's, not the database's. `Staged` reads what a
whole batch's handlers need with one statement per table, lets them work on those rows in
memory, and writes what they changed with one statement (or one pipelined executemany) per
kind of change: a number of round trips that does not grow with the batch.

`Direct` is the same interface with every call a statement (the dead-letter replay, one event
at a time, and handlers run outside a batch).

Every change is journalled, so that a handler that fails partway leaves no trace of its event:
`checkpoint()` before it, `rollback(mark)` if it raised (SPEC P2: per-event failure isolation).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from timedify.models import Shop
from timedify.store import appdata

_SHOP_COLUMNS = tuple(column.key for column in Shop.__table__.columns)
_MISSING = object()


class AppData(Protocol):
    """What the hot handlers read and write (store/appdata.py has the SQL)."""

    def redacted_at(self, domain: str) -> datetime | None: ...
    def get_shop(self, domain: str) -> Mapping[str, Any] | None: ...
    def upsert_shop(self, domain: str, now: datetime, **values: Any) -> None: ...
    def delete_sessions(self, domain: str) -> None: ...
    def set_session_scopes(self, domain: str, scopes: str, now: datetime) -> None: ...
    def get_subscription(self, subscription_id: str) -> Mapping[str, Any] | None: ...
    def upsert_subscription(self, values: dict[str, Any]) -> None: ...
    def follow_plan(self, domain: str, now: datetime) -> None:
        """The shop's plan status becomes that of its most recently changed subscription."""


class Direct:
    """`AppData` with every call a statement in the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def redacted_at(self, domain: str) -> datetime | None:
        return appdata.redacted_at(self.conn, domain)

    def get_shop(self, domain: str) -> Mapping[str, Any] | None:
        return appdata.get_shop(self.conn, domain)

    def upsert_shop(self, domain: str, now: datetime, **values: Any) -> None:
        appdata.upsert_shop(self.conn, domain, now, **values)

    def delete_sessions(self, domain: str) -> None:
        appdata.delete_sessions(self.conn, domain)

    def set_session_scopes(self, domain: str, scopes: str, now: datetime) -> None:
        appdata.set_session_scopes(self.conn, domain, scopes, now)

    def get_subscription(self, subscription_id: str) -> Mapping[str, Any] | None:
        return appdata.get_subscription(self.conn, subscription_id)

    def upsert_subscription(self, values: dict[str, Any]) -> None:
        appdata.upsert_subscription(self.conn, values)

    def follow_plan(self, domain: str, now: datetime) -> None:
        status = appdata.current_plan_status(self.conn, domain)
        appdata.upsert_shop(self.conn, domain, now, plan_status=status)


class Staged:
    """`AppData` over rows read for a whole batch; changes are written by `flush()`.

    Reads that miss what was read ahead (a shop or subscription no event of the batch named)
    fall back to a statement each, so the answers are always the database's plus the batch's
    own changes. Call `flush()` before anything else reads or writes these tables in the same
    transaction, and `forget()` after it did.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._journal: list[tuple[MutableMapping[Any, Any], Any, Any]] = []
        self._shops: dict[str, Mapping[str, Any] | None] = {}
        self._redacted: dict[str, datetime | None] = {}
        self._subscriptions: dict[str, Mapping[str, Any] | None] = {}
        self._shop_changes: dict[str, dict[str, Any]] = {}
        self._deleted_sessions: dict[str, bool] = {}
        self._session_scopes: dict[str, str] = {}
        self._subscription_changes: dict[str, dict[str, Any]] = {}
        self._plans: dict[str, bool] = {}

    def read_ahead(self, domains: Collection[str], subscription_ids: Collection[str]) -> None:
        """Read the rows of these shops and subscriptions with one statement per table."""
        domains = [d for d in domains if d not in self._shops]
        found = appdata.shops_by_domain(self.conn, domains)
        redacted = appdata.redacted_at_by_shop(self.conn, domains)
        for domain in domains:
            self._shops[domain] = found.get(domain)
            self._redacted[domain] = redacted.get(domain)
        ids = [i for i in subscription_ids if i not in self._subscriptions]
        subscriptions = appdata.subscriptions_by_id(self.conn, ids)
        for subscription_id in ids:
            self._subscriptions[subscription_id] = subscriptions.get(subscription_id)

    def checkpoint(self) -> int:
        """A mark to roll the staged changes back to."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every change staged since `checkpoint()` returned `mark`."""
        while len(self._journal) > mark:
            table, key, old = self._journal.pop()
            if old is _MISSING:
                del table[key]
            else:
                table[key] = old

    def flush(self, now: datetime) -> None:
        """Write every staged change, one statement (or pipelined executemany) per kind."""
        appdata.upsert_shops(self.conn, self._shop_changes, now)
        deleted = list(self._deleted_sessions)
        appdata.delete_sessions_of(self.conn, deleted)
        scopes = {d: s for d, s in self._session_scopes.items() if d not in self._deleted_sessions}
        appdata.set_sessions_scopes(self.conn, scopes, now)
        appdata.upsert_subscriptions(self.conn, list(self._subscription_changes.values()))
        appdata.follow_plans(self.conn, list(self._plans), now)
        for changes in (
            self._shop_changes,
            self._deleted_sessions,
            self._session_scopes,
            self._subscription_changes,
            self._plans,
        ):
            changes.clear()
        self._journal.clear()

    def forget(self) -> None:
        """Drop what was read: something else wrote these tables (call after `flush()`)."""
        self._shops.clear()
        self._redacted.clear()
        self._subscriptions.clear()
        self._journal.clear()

    # AppData

    def redacted_at(self, domain: str) -> datetime | None:
        if domain not in self._redacted:
            self._redacted[domain] = appdata.redacted_at(self.conn, domain)
        return self._redacted[domain]

    def get_shop(self, domain: str) -> Mapping[str, Any] | None:
        if domain not in self._shops:
            self._shops[domain] = appdata.get_shop(self.conn, domain)
        return self._shops[domain]

    def upsert_shop(self, domain: str, now: datetime, **values: Any) -> None:
        row = self.get_shop(domain) or _new_shop(domain, now)
        self._set(self._shops, domain, {**row, **values, "updated_at": now})
        self._set(self._shop_changes, domain, {**self._shop_changes.get(domain, {}), **values})

    def delete_sessions(self, domain: str) -> None:
        self._set(self._deleted_sessions, domain, True)

    def set_session_scopes(self, domain: str, scopes: str, now: datetime) -> None:
        self._set(self._session_scopes, domain, scopes)

    def get_subscription(self, subscription_id: str) -> Mapping[str, Any] | None:
        if subscription_id not in self._subscriptions:
            self._subscriptions[subscription_id] = appdata.get_subscription(
                self.conn, subscription_id
            )
        return self._subscriptions[subscription_id]

    def upsert_subscription(self, values: dict[str, Any]) -> None:
        key = str(values["id"])
        row = {**(self.get_subscription(key) or {}), **values}
        self._set(self._subscriptions, key, row)
        changes = {**self._subscription_changes.get(key, {}), **values}
        self._set(self._subscription_changes, key, changes)

    def follow_plan(self, domain: str, now: datetime) -> None:
        self.upsert_shop(domain, now)  # the shop row must exist for its plan to be set
        self._set(self._plans, domain, True)

    def _set(self, table: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        self._journal.append((table, key, table.get(key, _MISSING)))
        table[key] = value


def _new_shop(domain: str, now: datetime) -> dict[str, Any]:
    """A shop row as the database makes it when an upsert inserts it."""
    row: dict[str, Any] = dict.fromkeys(_SHOP_COLUMNS)
    row.update(domain=domain, installed=True, created_at=now, updated_at=now)
    return row
