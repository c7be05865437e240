"""`timedify config check` through the real CLI (O9)."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.cli import run_cli
from tests.support.settings import SECRET, settings_env


def test_config_check_names_problems_and_never_prints_values(tmp_path: Path) -> None:
    """O9: ✅/❌ per variable with the reason; no secret value ever reaches the output."""
    secrets = {
        "SHOPIFY_API_SECRET": "s3cr3t-value-that-must-not-leak",
        "SHOPIFY_API_SECRET_PREVIOUS": "changeme",
        "METRICS_TOKEN": "metrics-token-value-0042",
        "SENTRY_DSN": "not-a-dsn-but-secret-9931",
    }
    env = {
        "ENVIRONMENT": "production",
        "SHOPIFY_APP_URL": "https://app.example.com",
        "DATABASE_URL": "mysql://user:dbpassword-7731@host/db",
        "PORT": "eighty",
        **secrets,
    }
    for json_flag in ((), ("--json",)):
        result = run_cli(env, "config", "check", *json_flag)
        assert result.returncode == 1
        output = result.stdout + result.stderr
        for value in [*secrets.values(), "dbpassword-7731", "eighty"]:
            assert value not in output
    lines = run_cli(env, "config", "check").stdout
    assert "❌ SHOPIFY_API_KEY: missing (required)" in lines  # said once
    assert "no .env in /: reading the environment only" in lines  # run_cli runs from /
    assert "settings: 6 errors, 0 warnings\n" in lines
    assert "✅ SHOPIFY_API_SECRET (required): set (secret, value hidden)" in lines
    assert "❌ SHOPIFY_API_SECRET_PREVIOUS: placeholder value (refused in production)" in lines
    assert "❌ DATABASE_URL: malformed" in lines
    assert "❌ PORT:" in lines
    assert "❌ SENTRY_DSN: malformed" in lines
    assert "✅ METRICS_TOKEN: set (secret, value hidden)" in lines


def test_config_check_passes_a_complete_configuration(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    result = run_cli(env, "config", "check", "--json")
    assert result.returncode == 0, result.stdout
    doc = orjson.loads(result.stdout)
    assert doc["ok"] is True
    assert SECRET not in result.stdout
    names = {s["name"] for s in doc["settings"]}
    assert {"SHOPIFY_API_SECRET", "DATABASE_URL", "SENTRY_DSN", "METRICS_TOKEN"} <= names


def test_config_check_counts_in_words(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    del env["TOKEN_ENCRYPTION_KEY"]  # a warning outside production
    result = run_cli(env, "config", "check")
    assert result.returncode == 0, result.stdout
    assert "settings: 0 errors, 1 warning\n" in result.stdout
