"""`timedify logs-report` through the real CLI: files and stdin, both formats, posting, mistakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.cli import run_cli
from tests.support.fakes import capture_server
from tests.support.settings import settings_env

FLY_PREFIX = "2026-11-28T06:00:01Z app[683d5e0b] ams [info]"


def log_line(event: str, level: str = "info", days: float = 1, **fields: Any) -> str:
    when = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps({**fields, "event": event, "level": level, "time": when}).decode()


def crafted() -> list[str]:
    lines = [log_line("webhook_accepted", topic="orders/create", status=200, duration_ms=4.0)] * 8
    lines += [FLY_PREFIX + log_line("webhook_rejected", "warning", topic="orders/create",
                                    reason="invalid_signature", status=401)] * 3  # fmt: skip
    lines += [log_line("event_dead_lettered", "error", topic="orders/create", status="dead",
                       error_class="webhook", shop="jane@example.com")]  # fmt: skip
    lines += [log_line("webhook_accepted", topic="orders/create", days=9)] * 5  # before --since
    return lines


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return settings_env(f"sqlite:///{tmp_path}/none.sqlite3", tmp_path)


def test_json_report_of_a_file(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "fly.log"
    log.write_text("\n".join(crafted()) + "\n")
    result = run_cli(env, "logs-report", "--logs", str(log), "--since", "7d", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = orjson.loads(result.stdout)
    assert doc["webhooks"] == {
        "orders/create": {"received": 11, "accepted": 8, "duplicate": 0, "rejected": 3}
    }
    assert doc["dead_letters"] == {"opened": 1, "resolved": 0}
    assert doc["lines_before_since"] == 5
    assert "jane" not in result.stdout


def test_a_big_log_is_read_by_worker_processes(env: dict[str, str], tmp_path: Path) -> None:
    """Over 16 MiB, `--jobs 2` hands blocks to two processes: the same counts as one."""
    log = tmp_path / "week.log"
    one = log_line("webhook_accepted", topic="orders/create", status=200, duration_ms=4.0)
    repeat = 17 * 2**20 // len(one) + 1
    log.write_text("\n".join([*crafted(), *[one] * repeat]) + "\n")
    docs = []
    for jobs in ("1", "2"):
        args = ("--logs", str(log), "--format", "json", "--jobs", jobs)
        result = run_cli(env, "logs-report", *args)
        assert result.returncode == 0, result.stderr
        doc = orjson.loads(result.stdout)
        doc.pop("since")  # "7d ago" of each run
        docs.append(doc)
    assert docs[0] == docs[1]
    assert docs[1]["webhooks"]["orders/create"]["accepted"] == 8 + repeat
    assert docs[1]["acknowledgement_ms"]["count"] == 8 + repeat


def test_markdown_report_from_stdin(env: dict[str, str]) -> None:
    """`fly logs --no-tail | timedify logs-report`: stdin is the default source."""
    result = run_cli(env, "logs-report", stdin="\n".join(crafted()).encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Timedify weekly log review\n")
    assert "| orders/create | invalid_signature | 3 |" in result.stdout
    assert "8 acknowledged. p50 4 ms" in result.stdout
    assert "jane" not in result.stdout


def test_notify_posts_the_markdown(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(crafted()))
    with capture_server() as (hook_url, received):
        result = run_cli(env, "logs-report", "--logs", str(log), "--notify", hook_url)
    assert result.returncode == 0, result.stderr
    ((method, _path, body),) = received
    assert method == "POST"
    assert orjson.loads(body)["text"] == result.stdout


def test_a_failed_post_is_one_line_and_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(crafted()))
    result = run_cli(env, "logs-report", "--logs", str(log), "--notify", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stdout.startswith("# Timedify weekly log review")  # the report still printed
    assert result.stderr.strip().splitlines() == ["error: posting the report failed: ConnectError"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--logs", "/nonexistent/app.log"], 1, "cannot read /nonexistent/app.log"),
        (["--since", "last week"], 2, "--since: not a duration"),
    ],
)
def test_mistakes_are_one_line_on_stderr(
    env: dict[str, str], args: list[str], code: int, message: str
) -> None:
    result = run_cli(env, "logs-report", *args)
    assert result.returncode == code
    (line,) = result.stderr.strip().splitlines()
    assert message in line
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
