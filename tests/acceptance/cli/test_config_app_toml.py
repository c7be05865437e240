"""S9: `timedify config check --app-config` through the real CLI."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.cli import run_cli
from tests.support.settings import settings_env

REPO_TOML = Path(__file__).resolve().parents[3] / "shopify.app.toml"


def test_the_app_configuration_is_checked_and_fails_the_command(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    env.update(SHOPIFY_APP_URL="https://timedify.fly.dev", SHOPIFY_API_KEY="dev-api-key")
    good = run_cli(
        {**env, "SCOPES": "read_products"},
        "config",
        "check",
        "--app-config",
        str(REPO_TOML),
        "--json",
    )
    assert good.returncode == 0, good.stdout
    assert all(c["ok"] for c in orjson.loads(good.stdout)["app_config"])

    bad = run_cli(
        {**env, "SCOPES": "write_orders"}, "config", "check", "--app-config", str(REPO_TOML)
    )
    assert bad.returncode == 1
    assert "❌ shopify.app.toml: access_scopes.scopes: differ from SCOPES" in bad.stdout
