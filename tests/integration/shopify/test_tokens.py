"""S3/S4/S5: the token manager against the fake Shopify, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from tests.support.fake_shopify import FakeShopify, State, running
from tests.support.fake_shopify.oauth import session_token
from tests.support.helpers import drain, store_event, table_rows
from tests.support.settings import SECRET, SHOP, make_settings, settings_env
from timedify.db import make_engine
from timedify.models import Shop, ShopSession, utcnow
from timedify.settings import Settings
from timedify.shopify.contracts import (
    InvalidSubjectToken,
    NeedsReauthentication,
    ShopifyAuthError,
    ShopifyUnavailable,
    ShopNotInstalled,
)
from timedify.shopify.crypto import TokenCipher
from timedify.shopify.oauth import OAuthClient
from timedify.shopify.tokens import TokenManager
from timedify.store import shops

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class World:
    fake: FakeShopify
    settings: Settings
    engine: Engine
    manager: TokenManager

    @property
    def state(self) -> State:
        return self.fake.state

    def another_manager(self) -> TokenManager:
        """A second process's view: its own engine and client."""
        engine = make_engine(self.settings.database_url)
        return _manager(engine, self.settings)

    def install(self, shop: str = SHOP) -> str:
        """The merchant opens the app: exchange; the access token the fake issued."""
        self.manager.ensure_offline_token(shop, session_token(self.state, shop))
        return self.manager.access_token(shop)

    def session(self, shop: str = SHOP) -> dict[str, object]:
        (row,) = [
            r
            for r in table_rows(self.settings.database_url, ShopSession)
            if r["shop_domain"] == shop
        ]
        return row

    def shop(self, shop: str = SHOP) -> dict[str, object]:
        (row,) = [r for r in table_rows(self.settings.database_url, Shop) if r["domain"] == shop]
        return row

    def expire_soon(self, shop: str = SHOP, **values: object) -> None:
        """Make the stored access token end within the refresh margin."""
        with self.engine.begin() as conn:
            conn.execute(
                update(ShopSession)
                .where(ShopSession.shop_domain == shop)
                .values(expires_at=utcnow() + timedelta(minutes=2), **values)
            )


def _manager(engine: Engine, settings: Settings) -> TokenManager:
    oauth = OAuthClient(settings, backoff_seconds=0.01)
    return TokenManager(engine, settings, oauth, TokenCipher.from_settings(settings))


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    with running(State(client_id="test-key", client_secret=SECRET)) as fake:
        settings = make_settings(db_url, tmp_path, shopify_api_origin=fake.origin)
        engine = make_engine(db_url)
        try:
            yield World(fake, settings, engine, _manager(engine, settings))
        finally:
            engine.dispose()


def test_exchange_stores_the_pair_encrypted_and_records_the_install(world: World) -> None:
    token = world.install()
    assert world.state.access_tokens[token].shop == SHOP
    row = world.session()
    assert row["id"] == f"offline_{SHOP}"
    for column in ("access_token", "refresh_token"):
        assert str(row[column]).startswith("fernet:")
        assert "shpat_" not in str(row[column])
        assert "shprt_" not in str(row[column])
    assert token not in str(row)
    assert row["expires_at"] is not None
    assert row["refresh_token_expires_at"] is not None
    assert row["scope"] == world.state.scope
    shop = world.shop()
    assert shop["installed"]
    assert shop["installed_at"] is not None
    assert shop["scopes"] == world.state.scope
    assert world.state.count("token_exchange") == 1


def test_a_usable_token_is_not_exchanged_again(world: World) -> None:
    first = world.install()
    world.manager.ensure_offline_token(SHOP, session_token(world.state, SHOP))
    assert world.manager.access_token(SHOP) == first
    assert world.state.count("token_exchange") == 1
    assert world.state.count("refresh") == 0


def test_invalid_session_token_and_other_refusals_store_nothing(world: World) -> None:
    forged = session_token(
        State(client_id="test-key", client_secret="another-secret-of-another-app-00000"), SHOP
    )
    with pytest.raises(InvalidSubjectToken):
        world.manager.ensure_offline_token(SHOP, forged)
    world.state.client_secret = "rotated-elsewhere-0123456789abcdef"
    with pytest.raises(ShopifyAuthError) as info:
        world.manager.ensure_offline_token(SHOP, session_token(world.state, SHOP))
    assert not isinstance(info.value, InvalidSubjectToken)
    assert "invalid_client" in str(info.value)
    assert table_rows(world.settings.database_url, ShopSession) == []
    assert table_rows(world.settings.database_url, Shop) == []


def test_a_token_ending_soon_is_refreshed_and_replaced(world: World) -> None:
    first = world.install()
    old_refresh = world.session()["refresh_token"]
    world.expire_soon()
    second = world.manager.access_token(SHOP)
    assert second != first
    assert world.state.access_tokens[second].shop == SHOP
    assert world.session()["refresh_token"] != old_refresh
    assert world.state.count("refresh") == 1
    assert world.manager.access_token(SHOP) == second  # fresh now: no second refresh
    assert world.state.count("refresh") == 1


def test_concurrent_refreshes_in_threads_reach_shopify_once(world: World) -> None:
    world.install()
    world.expire_soon()
    world.state.answer_delay = 0.3
    managers = [world.another_manager() for _ in range(3)]
    barrier = threading.Barrier(len(managers))
    tokens: list[str] = []

    def use(manager: TokenManager) -> None:
        barrier.wait()
        tokens.append(manager.access_token(SHOP))

    threads = [threading.Thread(target=use, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(tokens) == 3
    assert len(set(tokens)) == 1
    assert world.state.count("refresh") == 1


CHILD = """
import hashlib, sys
from timedify.db import engine_for
from timedify.settings import load_settings
from timedify.shopify.crypto import TokenCipher
from timedify.shopify.oauth import OAuthClient
from timedify.shopify.tokens import TokenManager
settings = load_settings()
engine = engine_for(settings, busy_timeout_ms=30000)
manager = TokenManager(engine, settings, OAuthClient(settings), TokenCipher.from_settings(settings))
print("ready", flush=True)
sys.stdin.read(1)
token = manager.access_token(sys.argv[1])
print(hashlib.sha256(token.encode()).hexdigest(), flush=True)
"""


def test_concurrent_refreshes_in_processes_reach_shopify_once(world: World, tmp_path: Path) -> None:
    token = world.install()
    world.expire_soon()
    world.state.answer_delay = 0.3
    env = {
        **os.environ,
        **settings_env(world.settings.database_url, tmp_path),
        "SHOPIFY_API_ORIGIN": world.fake.origin,
        "PYTHONPATH": str(ROOT / "src"),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, SHOP],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready", child.stderr
    for child in children:  # released together once both are set up
        assert child.stdin is not None
        child.stdin.write(b"x")
        child.stdin.close()
    mine = hashlib.sha256(world.manager.access_token(SHOP).encode()).hexdigest()
    for child in children:
        assert child.stdout is not None
        assert child.stderr is not None
        out, err = child.stdout.read(), child.stderr.read()
        assert child.wait(60) == 0, err.decode()[-2000:]
        # The last line: the child that refreshes also logs it (structlog unconfigured: stdout).
        assert out.decode().strip().splitlines()[-1] == mine
    assert mine != hashlib.sha256(token.encode()).hexdigest()
    assert world.state.count("refresh") == 1


def test_a_lost_refresh_answer_is_retried_with_the_same_refresh_token(world: World) -> None:
    world.install()
    world.expire_soon()
    world.state.drop_next = 1
    token = world.manager.access_token(SHOP)
    assert world.state.count("refresh") == 2  # the dropped one and its retry
    assert world.state.access_tokens[token].shop == SHOP
    # The stored refresh token is the new one: it works, and the old one is used up.
    world.expire_soon()
    assert world.manager.access_token(SHOP) != token
    assert world.state.count("refresh") == 3


def test_shopify_down_keeps_the_old_pair_for_the_next_attempt(world: World) -> None:
    world.install()
    world.expire_soon()
    before = world.session()
    world.state.fail_next = 10
    with pytest.raises(ShopifyUnavailable):
        world.manager.access_token(SHOP)
    assert world.session()["refresh_token"] == before["refresh_token"]
    world.state.fail_next = 0
    token = world.manager.access_token(SHOP)
    assert world.state.access_tokens[token].shop == SHOP
    assert world.shop()["needs_reauth_at"] is None


def test_invalid_grant_marks_the_shop_and_the_next_exchange_clears_it(world: World) -> None:
    world.install()
    world.expire_soon()
    world.state.refresh_tokens.clear()  # Shopify revoked it
    with pytest.raises(NeedsReauthentication):
        world.manager.access_token(SHOP)
    assert world.shop()["needs_reauth_at"] is not None
    with world.engine.connect() as conn:
        assert [n.domain for n in shops.needing_reauth(conn)] == [SHOP]
    calls = len(world.state.token_requests)
    with pytest.raises(NeedsReauthentication):
        world.manager.access_token(SHOP)
    assert len(world.state.token_requests) == calls  # not asked again
    token = world.install()  # the merchant opens the app
    assert world.state.access_tokens[token].shop == SHOP
    assert world.shop()["needs_reauth_at"] is None
    with world.engine.connect() as conn:
        assert shops.needing_reauth(conn) == []


def test_an_expired_refresh_token_needs_reauthentication_without_asking(world: World) -> None:
    world.install()
    world.expire_soon(refresh_token_expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(NeedsReauthentication):
        world.manager.access_token(SHOP)
    assert world.state.count("refresh") == 0
    assert world.shop()["needs_reauth_at"] is not None


def test_after_unauthorized_refreshes_once_unless_already_replaced(world: World) -> None:
    rejected = world.install()
    fresh = world.manager.after_unauthorized(SHOP, rejected)
    assert fresh != rejected
    assert world.manager.after_unauthorized(SHOP, rejected) == fresh  # another caller's 401
    assert world.state.count("refresh") == 1


def test_uninstalled_shop_loses_its_sessions_and_is_never_refreshed(world: World) -> None:
    world.install()
    world.install("other-shop.myshopify.com")
    world.expire_soon()
    world.expire_soon("other-shop.myshopify.com")
    store_event(world.settings.database_url, "app/uninstalled", SHOP, payload={"id": 1})
    drain(world.settings)
    assert [r["shop_domain"] for r in table_rows(world.settings.database_url, ShopSession)] == [
        "other-shop.myshopify.com"
    ]
    assert not world.shop()["installed"]
    with pytest.raises(ShopNotInstalled):
        world.manager.access_token(SHOP)
    summary = world.manager.refresh_expiring()
    assert summary.outcomes == {"refreshed": ["other-shop.myshopify.com"]}
    assert world.state.count("refresh") == 1


def test_periodic_refresh_takes_only_tokens_due_and_reports_outcomes(world: World) -> None:
    world.install()
    world.install("fresh-shop.myshopify.com")
    world.install("revoked-shop.myshopify.com")
    world.expire_soon()
    world.expire_soon("revoked-shop.myshopify.com")
    for token, grant in list(world.state.refresh_tokens.items()):
        if grant.shop == "revoked-shop.myshopify.com":
            del world.state.refresh_tokens[token]
    summary = world.manager.refresh_expiring(timedelta(minutes=10))
    assert summary.outcomes == {
        "refreshed": [SHOP],
        "needs_reauth": ["revoked-shop.myshopify.com"],
    }
    # Refused shops are not tried again by the job.
    assert world.manager.refresh_expiring(timedelta(minutes=10)).outcomes == {}


def test_the_worker_refreshes_expiring_tokens_by_itself(world: World) -> None:
    """S4: the periodic job of every worker (processing/periodic.py)."""
    from timedify.processing.worker import Worker

    world.install()
    world.expire_soon()
    worker = Worker(world.settings, world.engine)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while world.state.count("refresh") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert world.state.count("refresh") == 1
    assert world.session()["expires_at"] > utcnow() + timedelta(minutes=30)  # type: ignore[operator]


def test_no_transaction_is_open_while_shopify_answers_a_refresh(world: World) -> None:
    """On SQLite a transaction would hold the write lock every webhook's commit needs."""
    world.install()
    world.expire_soon()
    world.state.answer_delay = 1.0
    refreshed: list[str] = []
    worker = threading.Thread(target=lambda: refreshed.append(world.manager.access_token(SHOP)))
    worker.start()
    deadline = time.monotonic() + 10
    while world.state.count("refresh") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert world.state.count("refresh") == 1  # Shopify has the request and is answering
    # A writer that does not wait at all gets the lock (SQLite: BEGIN IMMEDIATE, busy_timeout 0;
    # PostgreSQL: a row lock on the session with lock_timeout 0).
    other = make_engine(world.settings.database_url, busy_timeout_ms=0)
    with other.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL lock_timeout = '1ms'")
        conn.execute(
            update(ShopSession).where(ShopSession.shop_domain == SHOP).values(scope="read_themes")
        )
    other.dispose()
    worker.join(30)
    assert len(refreshed) == 1
    assert world.state.access_tokens[refreshed[0]].shop == SHOP
