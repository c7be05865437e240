"""store/shops.py on both databases: sessions, install state and the queries the jobs run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection

from timedify.db import make_engine
from timedify.models import utcnow
from timedify.store import appdata, shops

NOW = utcnow()


@pytest.fixture
def conn(db_url: str) -> Iterator[Connection]:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        yield connection
    engine.dispose()


def _save(
    conn: Connection, shop: str, expires_in: timedelta | None, value: str = "fernet:k:x"
) -> None:
    shops.save_tokens(
        conn,
        shop,
        NOW,
        access_token=value,
        scope="read_themes",
        expires_at=NOW + expires_in if expires_in is not None else None,
        refresh_token=value if expires_in is not None else None,
        refresh_token_expires_at=NOW + timedelta(days=90) if expires_in is not None else None,
    )


def test_save_tokens_replaces_the_offline_session(conn: Connection) -> None:
    _save(conn, "a.myshopify.com", timedelta(hours=1), "fernet:k:first")
    _save(conn, "a.myshopify.com", timedelta(hours=2), "fernet:k:second")
    session = shops.get_session(conn, "a.myshopify.com", for_update=True)
    assert session is not None
    assert session.id == "offline_a.myshopify.com"
    assert session.access_token == "fernet:k:second"
    assert session.expires_at == NOW + timedelta(hours=2)
    assert "fernet" not in repr(session)
    assert shops.get_session(conn, "b.myshopify.com") is None


def test_mark_installed_clears_uninstall_and_reauth(conn: Connection) -> None:
    appdata.upsert_shop(
        conn, "a.myshopify.com", NOW, installed=False, uninstalled_at=NOW, needs_reauth_at=NOW
    )
    shops.mark_installed(conn, "a.myshopify.com", NOW, scopes="read_themes")
    shop = appdata.get_shop(conn, "a.myshopify.com")
    assert shop is not None
    assert shop["installed"]
    assert shop["installed_at"] == NOW
    assert shop["uninstalled_at"] is None
    assert shop["needs_reauth_at"] is None
    assert shop["scopes"] == "read_themes"


def test_needs_reauth_keeps_the_first_time_and_lists_installed_shops_only(
    conn: Connection,
) -> None:
    shops.mark_needs_reauth(conn, "a.myshopify.com", NOW)
    shops.mark_needs_reauth(conn, "a.myshopify.com", NOW + timedelta(hours=1))
    shops.mark_needs_reauth(conn, "b.myshopify.com", NOW - timedelta(hours=1))
    appdata.upsert_shop(conn, "b.myshopify.com", NOW, installed=False)
    assert shops.needing_reauth(conn) == [shops.NeedsReauth("a.myshopify.com", NOW)]


def test_due_for_refresh_skips_uninstalled_refused_fresh_and_non_expiring(
    conn: Connection,
) -> None:
    _save(conn, "due.myshopify.com", timedelta(minutes=3))
    _save(conn, "fresh.myshopify.com", timedelta(hours=1))
    _save(conn, "legacy.myshopify.com", None)
    _save(conn, "gone.myshopify.com", timedelta(minutes=3))
    appdata.upsert_shop(conn, "gone.myshopify.com", NOW, installed=False)
    _save(conn, "refused.myshopify.com", timedelta(minutes=3))
    shops.mark_needs_reauth(conn, "refused.myshopify.com", NOW)
    assert shops.due_for_refresh(conn, NOW + timedelta(minutes=10)) == ["due.myshopify.com"]
    assert shops.non_expiring(conn) == ["legacy.myshopify.com"]


def test_sessions_not_under_a_key_finds_plain_text_and_other_keys(conn: Connection) -> None:
    _save(conn, "current.myshopify.com", timedelta(hours=1), "fernet:aaaa:x")
    _save(conn, "old.myshopify.com", timedelta(hours=1), "fernet:bbbb:x")
    _save(conn, "plain.myshopify.com", None, "shpat_plain")
    assert shops.sessions_not_under(conn, "fernet:aaaa:") == [
        "offline_old.myshopify.com",
        "offline_plain.myshopify.com",
    ]
    shops.set_session_tokens(conn, "offline_plain.myshopify.com", "fernet:aaaa:y", None)
    assert shops.session_tokens(conn, "offline_plain.myshopify.com") == ("fernet:aaaa:y", None)


def test_uninstall_deletes_the_sessions_this_store_writes(conn: Connection) -> None:
    """The app/uninstalled handler's delete (store/appdata) covers the offline session."""
    _save(conn, "a.myshopify.com", timedelta(hours=1))
    assert appdata.delete_sessions(conn, "a.myshopify.com") == 1
    assert shops.get_session(conn, "a.myshopify.com") is None


def test_list_shops_merges_shops_and_sessions(conn: Connection) -> None:
    shops.mark_installed(conn, "a.myshopify.com", NOW, scopes="read_themes,write_themes")
    _save(conn, "a.myshopify.com", timedelta(hours=1), "fernet:aaaa:x")
    _save(conn, "legacy.myshopify.com", None, "shpat_plain")
    appdata.upsert_shop(conn, "gone.myshopify.com", NOW, installed=False, uninstalled_at=NOW)
    listed = {s.domain: s for s in shops.list_shops(conn, "fernet:")}
    assert list(listed) == ["a.myshopify.com", "gone.myshopify.com", "legacy.myshopify.com"]
    a = listed["a.myshopify.com"].to_json()
    assert a["scopes"] == ["read_themes", "write_themes"]
    assert a["token_stored_as"] == "encrypted"
    assert a["expiring_token"] is True
    assert listed["gone.myshopify.com"].has_token is False
    assert listed["legacy.myshopify.com"].token_stored_as == "plain-text"
    assert listed["legacy.myshopify.com"].installed is None
