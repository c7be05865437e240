"""O10: an online backup while the service writes, and a restore drill that rejects bad files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from tests.support.cli import run_cli
from tests.support.helpers import post_webhook
from tests.support.rows import WebhookEvent, event_row, insert_rows
from tests.support.servers import threaded_server
from tests.support.settings import SHOP, make_settings, settings_env
from timedify import migrate
from timedify.testing import signed_webhook
from timedify.toolkit import backup


def test_backup_and_verify_a_live_database(db_url: str, tmp_path: Path) -> None:
    """Backup taken while the service is running; verify restores it and counts the rows."""
    insert_rows(db_url, WebhookEvent, [event_row(age=timedelta(days=1)) for _ in range(40)])
    settings = make_settings(db_url, tmp_path)
    env = settings_env(db_url, tmp_path)
    with threaded_server(settings) as (url, _app):
        for _ in range(3):
            assert (
                post_webhook(
                    url, signed_webhook("shop/redact", SHOP, "test-secret-0123456789-abcdefghij")
                ).status_code
                == 200
            )
        made = run_cli(env, "backup", "--json")
    assert made.returncode == 0, made.stderr
    path = Path(orjson.loads(made.stdout)["path"])
    assert path.parent == tmp_path / "backups"
    assert not list(path.parent.glob("*.partial"))
    checked = run_cli(env, "backup", "verify", str(path), "--json")
    assert checked.returncode == 0, checked.stderr
    doc = orjson.loads(checked.stdout)
    assert doc["revision"] == migrate.head_revision()
    assert doc["counts"]["webhook_events"] == 43
    human = run_cli(env, "backup", "verify", str(path))
    assert "webhook_events" in human.stdout
    assert "✅" in human.stdout


def test_verify_rejects_a_corrupt_file(db_url: str, tmp_path: Path) -> None:
    insert_rows(db_url, WebhookEvent, [event_row(age=timedelta(days=1)) for _ in range(200)])
    settings = make_settings(db_url, tmp_path)
    good = backup.make_backup(settings, tmp_path / "good.bak").path
    data = bytearray(good.read_bytes())
    # Keep the header (so the kind is recognised) and wreck what follows.
    for offset in range(100, len(data), 97):
        data[offset] = (data[offset] + 113) % 256
    corrupt = tmp_path / "corrupt.bak"
    corrupt.write_bytes(bytes(data))
    result = run_cli(settings_env(db_url, tmp_path), "backup", "verify", str(corrupt))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert ("corrupt" in result.stderr) or ("pg_restore failed" in result.stderr)


def test_verify_rejects_a_file_that_is_no_backup(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    result = run_cli(env, "backup", "verify", str(other))
    assert result.returncode == 1
    assert "is not a Timedify backup" in result.stderr
    missing = run_cli(env, "backup", "verify", str(tmp_path / "nope.sqlite3"))
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr


def test_verify_rejects_a_sqlite_file_without_our_schema(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(backup.BackupError, match="no migration revision"):
        backup.verify(path, None)


def test_find_pg_tool_reports_a_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("PG_BINDIR", raising=False)
    with pytest.raises(backup.BackupError, match="not found"):
        backup.find_pg_tool("pg_no_such_tool")
