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
