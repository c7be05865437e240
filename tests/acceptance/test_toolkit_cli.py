"""O5/O8/O9/O4 through the real CLI: retention-cleanup, status, config check, logs-watch."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson

from tests.support.cli import run_cli
from tests.support.rows import WebhookEvent, event_row, insert_rows
from tests.support.servers import service_env
from tests.support.settings import SECRET, settings_env
from timedify.models import EventState


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
    controller, terminal = pty.openpty()
    try:
        # Read while it runs: a terminal's buffer is small, and a full one would stop the bar.
        cleanup = subprocess.Popen(
            [sys.executable, "-m", "timedify", "retention-cleanup", "--days", "30"],
            env={**service_env(env), "TERM": "xterm", "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=terminal,
            cwd="/",
        )
        os.close(terminal)
        shown = _read_all(controller).decode(errors="replace")
        out, _ = cleanup.communicate(timeout=120)
    finally:
        os.close(controller)
    assert cleanup.returncode == 0
    assert b"deleted 12 webhook events" in out
    assert "retention cleanup" in shown
    assert "12/12" in shown


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_retention_cleanup_refuses_a_database_behind(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/new.sqlite3", tmp_path)
    result = run_cli(env, "retention-cleanup", "--days", "30")
    assert result.returncode == 3
    assert "timedify migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_shows_activity_without_synthetic_events(db_url: str, tmp_path: Path) -> None:
    insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(age=timedelta(minutes=5), topic="shop/redact"),
            event_row(age=timedelta(minutes=5), topic="shop/redact", state=EventState.RECEIVED),
            event_row(age=timedelta(minutes=5), topic="app/uninstalled", synthetic=True),
        ],
    )
    env = settings_env(db_url, tmp_path)
    result = run_cli(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    doc = orjson.loads(result.stdout)
    assert doc["topics"]["shop/redact"]["received_in_window"] == 2
    assert doc["topics"]["shop/redact"]["pending"] == 1
    assert "app/uninstalled" not in doc["topics"]
    assert doc["processing_latency_seconds"]["count"] == 1
    text = run_cli(env, "status")
    assert text.returncode == 0
    assert "shop/redact" in text.stdout
    assert "processing latency" in text.stdout


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
    assert "❌ SHOPIFY_API_KEY (required): missing (required)" in lines
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


def test_logs_watch_filters_a_followed_file(tmp_path: Path) -> None:
    """O4: follows a growing file; --errors --topic keep only matching lines; --seconds stops."""
    log = tmp_path / "app.log"
    log.write_text('{"event":"service_started","level":"info","time":"2026-11-28T06:00:00Z"}\n')
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "timedify", "logs-watch", str(log), "--errors", "--topic",
         "shop/redact", "--seconds", "4", "--from-start"],
        env=service_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
    )  # fmt: skip
    time.sleep(1.5)
    with log.open("a") as handle:
        handle.write(
            '2026-11-28T06:00:01Z app[1] ams [info]{"event":"webhook_rejected","level":"error",'
            '"topic":"shop/redact","status":503,"error_class":"db","time":"2026-11-28T06:00:01Z"}\n'
        )
        handle.write('{"event":"webhook_accepted","level":"info","topic":"shop/redact"}\n')
        handle.write('{"event":"webhook_rejected","level":"error","topic":"app/uninstalled"}\n')
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    assert len(lines) == 1
    assert "webhook_rejected" in lines[0]
    assert "topic=shop/redact" in lines[0]


def test_logs_watch_reads_stdin(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    data = b'{"event":"webhook_accepted","level":"info","topic":"shop/redact"}\nplain text\n'
    result = run_cli(env, "logs-watch", "-", "--webhooks", stdin=data)
    assert result.returncode == 0
    assert "webhook_accepted" in result.stdout
    assert "plain text" not in result.stdout
    assert run_cli(env, "logs-watch", str(tmp_path / "missing.log")).returncode == 1
