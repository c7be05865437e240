"""`timedify migrate` as a subprocess (D4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.support.cli import run_cli
from tests.support.pgcluster import free_port
from tests.support.settings import settings_env
from timedify.migrate import head_revision


def test_migrate_status_then_apply(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/new.sqlite3", tmp_path)
    status = run_cli(env, "migrate", "--status", "--json")
    assert status.returncode == 1
    pending = orjson.loads(status.stdout)["pending"]
    assert pending[0] == "0001"
    assert pending[-1] == head_revision()
    applied = run_cli(env, "migrate")
    assert applied.returncode == 0, applied.stderr
    after = run_cli(env, "migrate", "--status", "--json")
    assert after.returncode == 0
    assert orjson.loads(after.stdout)["up_to_date"] is True


def test_migrate_reports_an_unreachable_database(tmp_path: Path) -> None:
    env = settings_env("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    result = run_cli(env, "migrate")
    assert result.returncode == 4
    assert "Traceback" not in result.stderr


def test_a_database_newer_than_the_code_is_a_clear_error(tmp_path: Path) -> None:
    """A rollback onto a database a newer release migrated: one line, exit 3, no traceback."""
    db = tmp_path / "new.sqlite3"
    env = settings_env(f"sqlite:///{db}", tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    for command in (["migrate"], ["migrate", "--status"], ["serve"]):
        result = run_cli(env, *command)
        assert result.returncode == 3, command
        assert "newer release" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command", [["migrate"], ["serve"], ["status"], ["dead-letters", "list"], ["backup"]]
)
def test_an_unreachable_postgresql_is_named_with_its_reason(
    tmp_path: Path, command: list[str]
) -> None:
    """Exit 4 with the driver's reason on the one line (not just `OperationalError`), never
    the password."""
    port = free_port()  # nothing listens there
    env = settings_env(f"postgresql://u:pw-0123456789@127.0.0.1:{port}/db", tmp_path)
    result = run_cli(env, *command)
    assert result.returncode == 4, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line == (
        f'error: cannot reach the database: connection to server at "127.0.0.1", port {port} '
        "failed: Connection refused"
    )
    assert "pw-0123456789" not in result.stdout + result.stderr
