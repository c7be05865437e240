"""S4/S5/S8: `timedify shops` list, migrate-tokens, generate-key, rotate-key.

The real command as a subprocess, on both databases, against the fake Shopify.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.support.cli import run_cli
from tests.support.fake_shopify import FakeShopify, State, running
from tests.support.fake_shopify.oauth import session_token
from tests.support.helpers import drain, store_event, table_rows
from tests.support.settings import (
    PREVIOUS_TOKEN_KEY,
    SECRET,
    SHOP,
    TOKEN_KEY,
    make_settings,
    settings_env,
)
from timedify.cli import app
from timedify.db import make_engine
from timedify.models import ShopSession, utcnow
from timedify.shopify.crypto import TokenCipher, generate_key
from timedify.shopify.oauth import OAuthClient
from timedify.shopify.tokens import TokenManager
from timedify.store import shops

LEGACY = "legacy-shop.myshopify.com"
GONE = "gone-shop.myshopify.com"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command. (In-process, structlog's cached loggers would keep writing to the
    first CliRunner's closed stream while the fake Shopify's thread still runs.)"""
    return run_cli(env, *args)


@pytest.fixture
def fake() -> Iterator[FakeShopify]:
    with running(State(client_id="test-key", client_secret=SECRET)) as server:
        yield server


def _env(db_url: str, tmp_path: Path, fake: FakeShopify, **extra: str) -> dict[str, str]:
    return settings_env(db_url, tmp_path, SHOPIFY_API_ORIGIN=fake.origin, **extra)


def _manager(db_url: str, tmp_path: Path, fake: FakeShopify) -> TokenManager:
    settings = make_settings(db_url, tmp_path, shopify_api_origin=fake.origin)
    engine = make_engine(db_url)
    return TokenManager(engine, settings, OAuthClient(settings), TokenCipher(TOKEN_KEY))


def _legacy_session(db_url: str, fake: FakeShopify, shop: str = LEGACY) -> str:
    """A non-expiring token stored in plain text, as the app before S5 left it."""
    with fake.state.lock:
        token = fake.state.issue_access(shop, expiring=False)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        shops.save_tokens(
            conn,
            shop,
            utcnow(),
            access_token=token,
            scope="read_themes",
            expires_at=None,
            refresh_token=None,
            refresh_token_expires_at=None,
        )
    engine.dispose()
    return token


def test_list_shows_every_shop_and_no_token(db_url: str, tmp_path: Path, fake: FakeShopify) -> None:
    manager = _manager(db_url, tmp_path, fake)
    for shop in (SHOP, GONE, "revoked-shop.myshopify.com"):
        manager.ensure_offline_token(shop, session_token(fake.state, shop))
    manager.mark_needs_reauth("revoked-shop.myshopify.com")
    legacy = _legacy_session(db_url, fake)
    store_event(db_url, "app/uninstalled", GONE, payload={"id": 1})
    drain(make_settings(db_url, tmp_path))

    listed = run(_env(db_url, tmp_path, fake), "shops", "list", "--json")
    assert listed.returncode == 0
    assert "shpat_" not in listed.stdout
    assert "shprt_" not in listed.stdout
    assert legacy not in listed.stdout
    doc = {item["domain"]: item for item in orjson.loads(listed.stdout)}
    assert set(doc) == {SHOP, GONE, LEGACY, "revoked-shop.myshopify.com"}
    assert doc[SHOP]["installed"] is True
    assert doc[SHOP]["expiring_token"] is True
    assert doc[SHOP]["token_stored_as"] == "encrypted"
    assert doc[SHOP]["scopes"] == fake.state.scope.split(",")
    assert doc[SHOP]["needs_reauth"] is False
    assert doc[GONE]["installed"] is False
    assert doc[GONE]["has_token"] is False
    assert doc["revoked-shop.myshopify.com"]["needs_reauth"] is True
    assert doc[LEGACY]["installed"] is None  # a session from before shops were recorded
    assert doc[LEGACY]["token_stored_as"] == "plain-text"
    assert doc[LEGACY]["expiring_token"] is False

    human = run(_env(db_url, tmp_path, fake), "shops", "list")
    assert human.returncode == 0
    assert "NEEDED since" in human.stdout
    assert "plain-text" in human.stdout


def test_migrate_tokens_dry_run_then_real_then_rerun(
    db_url: str, tmp_path: Path, fake: FakeShopify
) -> None:
    env = _env(db_url, tmp_path, fake)
    old = _legacy_session(db_url, fake)
    revoked = _legacy_session(db_url, fake, "revoked-shop.myshopify.com")
    del fake.state.access_tokens[revoked]

    dry = run(env, "shops", "migrate-tokens", "--dry-run", "--json")
    assert dry.returncode == 0
    assert {s["shop"]: s["outcome"] for s in orjson.loads(dry.stdout)["shops"]} == {
        LEGACY: "would migrate",
        "revoked-shop.myshopify.com": "would migrate",
    }
    assert fake.state.count("migration") == 0

    real = run(env, "shops", "migrate-tokens")
    assert real.returncode == 1  # one shop needs re-authentication
    assert f"{LEGACY}: migrated" in real.stdout
    assert "revoked-shop.myshopify.com: needs re-authentication" in real.stdout
    assert old not in fake.state.access_tokens  # the old token no longer works
    (row,) = [r for r in table_rows(db_url, ShopSession) if r["shop_domain"] == LEGACY]
    assert row["expires_at"] is not None
    assert str(row["access_token"]).startswith("fernet:")
    assert str(row["refresh_token"]).startswith("fernet:")

    again = run(env, "shops", "migrate-tokens")
    assert again.returncode == 0
    assert "nothing to migrate" in again.stdout
    assert fake.state.count("migration") == 1


def test_migrate_tokens_retries_a_lost_answer_and_reports_shopify_down(
    db_url: str, tmp_path: Path, fake: FakeShopify
) -> None:
    env = _env(db_url, tmp_path, fake)
    _legacy_session(db_url, fake)
    fake.state.fail_next = 100
    down = run(env, "shops", "migrate-tokens")
    assert down.returncode == 4
    assert f"{LEGACY}: unavailable" in down.stdout
    fake.state.fail_next = 0
    fake.state.drop_next = 1  # processed by Shopify, answer lost: the retry gets the same pair
    assert run(env, "shops", "migrate-tokens").returncode == 0
    manager = _manager(db_url, tmp_path, fake)
    token = manager.access_token(LEGACY)
    assert fake.state.access_tokens[token].expires_at is not None
    assert fake.state.count("migration") == 2


def test_rotate_key_reencrypts_under_the_new_key(
    db_url: str, tmp_path: Path, fake: FakeShopify
) -> None:
    manager = _manager(db_url, tmp_path, fake)
    manager.ensure_offline_token(SHOP, session_token(fake.state, SHOP))
    token = manager.access_token(SHOP)
    legacy = _legacy_session(db_url, fake)
    new_key = generate_key()
    env = _env(
        db_url,
        tmp_path,
        fake,
        TOKEN_ENCRYPTION_KEY=new_key,
        TOKEN_ENCRYPTION_KEY_PREVIOUS=TOKEN_KEY,
    )
    rotated = run(env, "shops", "rotate-key", "--json")
    assert rotated.returncode == 0
    assert orjson.loads(rotated.stdout) == {"reencrypted": 1, "encrypted_plain_text": 1}
    new = TokenCipher(new_key)
    for row in table_rows(db_url, ShopSession):
        assert str(row["access_token"]).startswith(new.current_prefix)
    settings = make_settings(db_url, tmp_path, shopify_api_origin=fake.origin)
    only_new = TokenManager(make_engine(db_url), settings, OAuthClient(settings), new)
    assert only_new.access_token(SHOP) == token
    assert only_new.access_token(LEGACY) == legacy
    again = run(env, "shops", "rotate-key", "--json")
    assert orjson.loads(again.stdout) == {"reencrypted": 0, "encrypted_plain_text": 0}


def test_generate_key_prints_a_usable_key() -> None:
    result = CliRunner().invoke(app, ["shops", "generate-key"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert TokenCipher(key).decrypt(TokenCipher(key).encrypt("x")) == "x"


def test_exit_codes_and_one_line_errors(sqlite_url: str, tmp_path: Path) -> None:
    env = settings_env(sqlite_url, tmp_path)
    no_key = {**env, "TOKEN_ENCRYPTION_KEY": ""}
    result = run_cli(no_key, "shops", "rotate-key")
    assert result.returncode == 2
    assert "TOKEN_ENCRYPTION_KEY: missing" in result.stderr
    assert "Traceback" not in result.stderr

    bad_key = {**env, "TOKEN_ENCRYPTION_KEY": "short"}
    result = run_cli(bad_key, "shops", "list")
    assert result.returncode == 2
    assert "TOKEN_ENCRYPTION_KEY: not a Fernet key" in result.stderr
    assert "short" not in result.stderr

    # A token written under a key that is neither the current nor the previous one.
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        shops.save_tokens(
            conn,
            SHOP,
            utcnow(),
            access_token=TokenCipher(PREVIOUS_TOKEN_KEY).encrypt("shpat_x"),
            scope="",
            expires_at=utcnow() + timedelta(hours=1),
            refresh_token=None,
            refresh_token_expires_at=None,
        )
    engine.dispose()
    result = run_cli(env, "shops", "rotate-key")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot be decrypted" in result.stderr

    behind = settings_env(f"sqlite:///{tmp_path}/new.sqlite3", tmp_path)
    assert run_cli(behind, "shops", "list").returncode == 3
    gone = settings_env("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    result = run_cli(gone, "shops", "list")
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
