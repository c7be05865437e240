"""`timedify logs-watch` through the real CLI (O4)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.servers import service_env
from tests.support.settings import settings_env


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


def test_logs_watch_shows_no_null_fields_and_says_where_a_log_file_comes_from(
    tmp_path: Path,
) -> None:
    """A JSON null is left out (no `note=None`); a missing file names LOG_FILE and the pipe."""
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    data = b'{"event":"event_processed","level":"info","topic":"shop/redact","note":null}\n'
    result = run_cli(env, "logs-watch", "-", stdin=data)
    assert result.returncode == 0, result.stderr
    assert "event_processed topic=shop/redact" in result.stdout
    assert "None" not in result.stdout
    missing = run_cli(env, "logs-watch", "tmp/timedify.log")
    assert missing.returncode == 1
    assert "LOG_FILE" in missing.stderr
    assert "timedify serve | timedify logs-watch -" in missing.stderr


def test_logs_watch_help_keeps_each_example_on_its_line(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path, COLUMNS="100")
    lines = [line.strip() for line in run_cli(env, "logs-watch", "--help").stdout.splitlines()]
    assert "fly logs | timedify logs-watch - --errors --topic app/uninstalled" in lines
    assert "timedify logs-watch tmp/timedify.log --webhooks --seconds 60" in lines
