"""store.appdata: the merchant data the handlers write, upserted the same on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.rows import insert_rows
from tests.support.settings import SHOP
from timedify.db import make_engine
from timedify.models import ShopSession
from timedify.store import appdata


def test_upsert_shop_creates_then_updates_only_the_given_columns(db_url: str) -> None:
    engine = make_engine(db_url)
    first, later = datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=1)
    with engine.begin() as conn:
        appdata.upsert_shop(conn, SHOP, first, scopes="read_themes", installed_at=first)
        appdata.upsert_shop(conn, SHOP, later, installed=False)
        shop = appdata.get_shop(conn, SHOP)
    engine.dispose()
    assert shop is not None
    assert shop["installed"] is False
    assert shop["scopes"] == "read_themes"  # kept: not given the second time
    assert shop["created_at"] == first
    assert shop["updated_at"] == later


def test_delete_sessions_removes_only_that_shops_tokens(db_url: str) -> None:
    now = datetime.now(UTC)
    session = {"shop_domain": SHOP, "access_token": "enc", "created_at": now, "updated_at": now}
    insert_rows(
        db_url,
        ShopSession,
        [
            {**session, "id": f"offline_{SHOP}"},
            {**session, "id": "offline_other.myshopify.com", "shop_domain": "other.myshopify.com"},
        ],
    )
    engine = make_engine(db_url)
    with engine.begin() as conn:
        assert appdata.delete_sessions(conn, SHOP) == 1
        assert appdata.delete_sessions(conn, SHOP) == 0
    engine.dispose()
