"""`timedify serve` as a subprocess: settings and schema refused before it starts (O1)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli
from tests.support.settings import settings_env


def test_missing_settings_stop_the_start_with_one_line_each(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "PORT": "notaport"}
    result = run_cli(env, "serve")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for line in (
        "SHOPIFY_API_KEY: missing (required)",
        "SHOPIFY_API_SECRET: missing (required)",
        "SHOPIFY_APP_URL: missing (required)",
        "PORT:",
    ):
        assert line in result.stderr


def test_serve_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/new.sqlite3", tmp_path)
    result = run_cli(env, "serve")
    assert result.returncode == 3
    assert "run `timedify migrate`" in result.stderr
    assert "Traceback" not in result.stderr
