"""Prepared statements give what `Connection.execute` gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from timedify.db import make_engine
from timedify.models import EventState, Shop, WebhookEvent
from timedify.store.prepared import Prepared

SHOPS = Shop.__table__
_INSERT = Prepared(
    insert(SHOPS), ["domain", "installed", "installed_at", "created_at", "updated_at"]
)
_GET = Prepared(select(SHOPS).where(SHOPS.c.domain == bindparam("domain")))
_UNINSTALL = Prepared(
    update(SHOPS)
    .where(SHOPS.c.domain == bindparam("domain"), SHOPS.c.installed.is_(True))
    .values(installed=False, updated_at=bindparam("now"))
)


def _shop(domain: str, at: datetime) -> dict[str, object]:
    return {
        "domain": domain,
        "installed": True,
        "installed_at": at,
        "created_at": at,
        "updated_at": at,
    }


def test_values_go_in_and_come_out_as_sqlalchemy_converts_them(db_url: str) -> None:
    """Timezone-aware timestamps and booleans round-trip; the row equals SQLAlchemy's own."""
    at = datetime(2024, 5, 1, 12, 30, 0, 5, tzinfo=UTC)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            _INSERT.execute(conn, _shop("a.myshopify.com", at))
            mine = _GET.first(conn, {"domain": "a.myshopify.com"})
            theirs = conn.execute(select(SHOPS)).mappings().one()
            assert _GET.first(conn, {"domain": "missing.myshopify.com"}) is None
    finally:
        engine.dispose()
    assert mine == dict(theirs)
    assert mine is not None
    assert mine["installed"] is True
    assert mine["installed_at"] == at
    assert mine["installed_at"].tzinfo is UTC


def test_rowcounts_and_values_fixed_by_the_statement(db_url: str) -> None:
    """`execute` and `executemany` count changed rows; a value the statement fixes itself
    (`installed IS true`, `installed = false`) applies without being passed."""
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            shops = [_shop(f"s{i}.myshopify.com", now) for i in range(3)]
            assert _INSERT.executemany(conn, shops) == 3
            later = {"now": now + timedelta(seconds=1)}
            assert _UNINSTALL.execute(conn, {"domain": "s0.myshopify.com", **later}) == 1
            assert _UNINSTALL.execute(conn, {"domain": "s0.myshopify.com", **later}) == 0
            rows = [{"domain": f"s{i}.myshopify.com", **later} for i in range(3)]
            assert _UNINSTALL.executemany(conn, rows) == 2
            installed = conn.scalars(select(SHOPS.c.installed)).all()
    finally:
        engine.dispose()
    assert installed == [False, False, False]


def test_database_errors_are_sqlalchemys_exceptions(db_url: str) -> None:
    """Callers (the CLI's error boundary, the worker) see the same exception classes."""
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            _INSERT.execute(conn, _shop("dup.myshopify.com", now))
            with pytest.raises(IntegrityError):
                _INSERT.execute(conn, _shop("dup.myshopify.com", now))
            conn.rollback()
    finally:
        engine.dispose()


def test_statements_it_cannot_run_are_refused_up_front(sqlite_url: str) -> None:
    expanding = select(WebhookEvent.id).where(WebhookEvent.id.in_(bindparam("ids", expanding=True)))
    defaults = insert(WebhookEvent.__table__)  # `attempts` has a Python-side default
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            with pytest.raises(ValueError, match="IN"):
                Prepared(expanding).rows(conn, {"ids": [1]})
            with pytest.raises(ValueError, match="default"):
                Prepared(defaults, ["webhook_id", "state"]).execute(
                    conn, {"webhook_id": "w", "state": EventState.RECEIVED}
                )
    finally:
        engine.dispose()


def test_a_replaced_connection_gets_a_cursor_of_its_own(db_url: str) -> None:
    """The cursor kept for a connection is not used on the connection that replaces it."""
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            with conn.begin():
                _INSERT.execute(conn, _shop("a.myshopify.com", now))
            conn.invalidate()  # as after a lost server: the pool connects anew
            with conn.begin():
                assert _GET.first(conn, {"domain": "a.myshopify.com"}) is not None
    finally:
        engine.dispose()
