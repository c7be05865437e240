"""`timedify serve` as a subprocess: settings and schema refused before it starts (O1)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["status"]])
@pytest.mark.parametrize("url", ["postgress://u:p@localhost/db", "sqlite://tmp/x.sqlite3"])
def test_a_malformed_database_url_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str], url: str
) -> None:
    env = settings_env("sqlite:///unused", tmp_path, DATABASE_URL=url)
    result = run_cli(env, *command)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL: malformed: must start with sqlite:///" in result.stderr
    assert "p@localhost" not in result.stderr  # never the value (it may hold a password)


def test_log_level_is_accepted_in_lower_case(tmp_path: Path, sqlite_url: str) -> None:
    result = run_cli(settings_env(sqlite_url, tmp_path, LOG_LEVEL="debug"), "migrate", "--status")
    assert result.returncode == 0, result.stderr


def test_a_port_in_use_is_one_line_and_exit_2_before_anything_starts(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Exit 3 means "database behind"; a busy port is a setting to change, said at once."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = settings_env(sqlite_url, tmp_path, HOST="127.0.0.1", PORT=str(port))
        result = run_cli(env, "serve")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; another process "
        "listens there (a second `timedify serve`?): stop it or choose another --port / PORT"
    ]
    assert "service_started" not in result.stdout + result.stderr
