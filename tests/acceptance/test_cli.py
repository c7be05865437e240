"""The real `timedify` command as a subprocess: serve, migrate, send-webhook (O1, O11, D4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from tests.support.cli import run_cli
from tests.support.helpers import events
from tests.support.servers import ServiceProcess
from tests.support.settings import SHOP, settings_env
from timedify import __version__
from timedify.migrate import head_revision


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


def test_send_webhook_to_a_running_service(db_url: str, tmp_path: Path) -> None:
    """The README's quick start: serve, send a signed webhook, 200; unsigned is 401."""
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false")
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        sent = run_cli(
            env, "send-webhook", "app/uninstalled", "--url", service.url, "--shop", SHOP, "--json"
        )
        assert sent.returncode == 0, sent.stderr
        assert orjson.loads(sent.stdout)["status"] == 200
        # A topic without a path of its own goes to the unified path, where it is acknowledged.
        other = run_cli(env, "send-webhook", "orders/create", "--url", service.url, "--json")
        assert other.returncode == 0, other.stdout
        assert orjson.loads(other.stdout)["url"] == service.url + "/webhooks"
        import httpx

        unsigned = httpx.post(service.url + "/webhooks/app/uninstalled", content=b"{}")
        assert unsigned.status_code == 401
    finally:
        assert service.stop_gracefully()
    assert sorted(e["topic"] for e in events(db_url)) == ["app/uninstalled", "orders/create"]


def test_send_webhook_reports_an_unreachable_service(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    result = run_cli(env, "send-webhook", "shop/redact", "--url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert "could not reach" in result.stderr


def test_version_prints_and_exits_0(tmp_path: Path) -> None:
    result = run_cli({}, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


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
