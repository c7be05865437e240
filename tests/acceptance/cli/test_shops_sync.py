"""S8: `timedify shops sync`: output, --json, --dry-run and exit codes, on both databases.

In-process (Typer's CliRunner) on a `shops` group registered with a token source over the fake
Shopify's issued tokens; everything else (settings from the environment, database, Admin API
client) is the command's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from tests.support.fake_shopify import State, running
from tests.support.helpers import table_rows
from tests.support.issued_tokens import IssuedTokens
from tests.support.settings import settings_env
from timedify.cli import shops_sync
from timedify.db import make_engine
from timedify.errors import TimedifyError
from timedify.logs import configure_logging
from timedify.models import Shop
from timedify.store import appdata

SHOP = "lost-webhook.myshopify.com"


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        appdata.upsert_shop(conn, SHOP, datetime.now(UTC), installed=True, scopes="read_products")
    engine.dispose()
    state = State()
    state.admin.scopes[SHOP] = ["read_products", "write_themes"]
    with running(state) as fake:
        tokens = IssuedTokens(state)
        tokens.issue(SHOP)
        group = typer.Typer()
        shops_sync.register(group, tokens=lambda _settings, _engine: tokens)
        root = typer.Typer()
        root.add_typer(group, name="shops")
        env = settings_env(
            db_url, tmp_path, SHOPIFY_API_ORIGIN=fake.origin, SHOPIFY_ADMIN_MAX_RETRIES="0"
        )
        yield SimpleNamespace(app=root, env=env, state=state, db_url=db_url)


def run(cli: SimpleNamespace, *args: str) -> SimpleNamespace:
    """The command in-process; an expected failure gives its exit code as `main()` would."""
    try:
        result = CliRunner(env=cli.env).invoke(cli.app, ["shops", "sync", *args])
    finally:
        # The command logs to the runner's stderr, closed now; the fake Shopify logs on.
        configure_logging("INFO", "json")
    code = result.exit_code
    if isinstance(result.exception, TimedifyError):
        code = result.exception.exit_code
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=code, stdout=result.stdout)


def scopes(cli: SimpleNamespace) -> Any:
    return {r["domain"]: r["scopes"] for r in table_rows(cli.db_url, Shop)}[SHOP]


def test_dry_run_then_repair_then_nothing_to_repair(cli: SimpleNamespace) -> None:
    dry = run(cli, "--all", "--dry-run", "--json")
    assert dry.returncode == 1
    doc = orjson.loads(dry.stdout)
    assert doc["dry_run"] is True
    assert {r["kind"] for s in doc["shops"] for r in s["repairs"]} == {"scopes", "subscription"}
    assert scopes(cli) == "read_products"

    repaired = run(cli, "--shop", SHOP)
    assert repaired.returncode == 1
    assert f"{SHOP}: repaired" in repaired.stdout
    assert "scopes: read_products -> read_products,write_themes" in repaired.stdout
    assert scopes(cli) == "read_products,write_themes"

    clean = run(cli, "--all")
    assert clean.returncode == 0
    assert "0 repaired" in clean.stdout


def test_shopify_unreachable_exits_4(cli: SimpleNamespace) -> None:
    cli.state.admin.next_5xx = 10
    done = run(cli, "--all")
    assert done.returncode == 4
    assert "unreachable" in done.stdout
    assert scopes(cli) == "read_products"


@pytest.mark.parametrize(
    "args", [(), ("--all", "--shop", SHOP), ("--shop", "nobody.myshopify.com")]
)
def test_no_or_both_selections_or_an_unknown_shop_exit_2(
    cli: SimpleNamespace, args: tuple[str, ...]
) -> None:
    assert run(cli, *args).returncode == 2
    assert scopes(cli) == "read_products"
