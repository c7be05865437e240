"""`timedify retention-cleanup` through the real CLI (O5)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson

from tests.support.cli import run_cli, run_cli_on_terminal
from tests.support.rows import WebhookEvent, event_row, insert_rows
from tests.support.settings import settings_env


def test_retention_cleanup_dry_run_then_real(db_url: str, tmp_path: Path) -> None:
    insert_rows(db_url, WebhookEvent, [event_row(age=timedelta(days=40)) for _ in range(12)])
    insert_rows(db_url, WebhookEvent, [event_row(age=timedelta(days=1))])
    env = settings_env(db_url, tmp_path, LOG_FILE="toolkit.log")
    dry = run_cli(env, "retention-cleanup", "--days", "30", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert orjson.loads(dry.stdout)["events"] == 12
    real = run_cli(env, "retention-cleanup", "--days", "30", "--batch-size", "5")
    assert real.returncode == 0, real.stderr
    assert "deleted 12 webhook events" in real.stdout
    again = run_cli(env, "retention-cleanup", "--days", "30", "--json")
    assert orjson.loads(again.stdout)["events"] == 0
    # The counts are also logged (JSON on stderr and in LOG_FILE), never on stdout.
    logged = [orjson.loads(x) for x in (tmp_path / "toolkit.log").read_text().splitlines()]
    finished = [x for x in logged if x["event"] == "retention_cleanup_finished"]
    assert [x["events"] for x in finished] == [12, 12, 0]
    assert [x["dry_run"] for x in finished] == [True, False, False]
    # The duty applied is the database's own default unless --duty says otherwise.
    assert orjson.loads(again.stdout)["policy"]["duty"] == (0.5 if "sqlite" in db_url else 1.0)
    told = run_cli(env, "retention-cleanup", "--days", "30", "--duty", "0.25", "--json")
    assert orjson.loads(told.stdout)["policy"]["duty"] == 0.25


def test_retention_cleanup_on_a_terminal_counts_first_for_its_progress_bar(
    db_url: str, tmp_path: Path
) -> None:
    # Without a terminal the cleanup skips the count (it walks the whole old range); with one,
    # the bar shows done against the total.
    insert_rows(db_url, WebhookEvent, [event_row(age=timedelta(days=40)) for _ in range(12)])
    env = settings_env(db_url, tmp_path)
    cleanup, shown = run_cli_on_terminal(env, "retention-cleanup", "--days", "30")
    assert cleanup.returncode == 0
    assert "deleted 12 webhook events" in cleanup.stdout
    assert "retention cleanup" in shown
    assert "12/12" in shown
    # Its log line is for people there, not a raw JSON object wrapping at the terminal's width.
    assert "retention_cleanup_finished" in shown
    assert '{"' not in shown


def test_retention_cleanup_refuses_a_database_behind(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/new.sqlite3", tmp_path)
    result = run_cli(env, "retention-cleanup", "--days", "30")
    assert result.returncode == 3
    assert "timedify migrate" in result.stderr
    assert "Traceback" not in result.stderr
