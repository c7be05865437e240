"""`timedify backup` through the real CLI, on a terminal (O10)."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.cli import run_cli_on_terminal
from tests.support.settings import settings_env


def test_backup_on_a_terminal_logs_for_people_and_keeps_the_file_json(
    sqlite_url: str, tmp_path: Path
) -> None:
    """No raw JSON line before the human output; with LOG_FILE the file alone gets it."""
    result, shown = run_cli_on_terminal(settings_env(sqlite_url, tmp_path), "backup")
    assert result.returncode == 0, shown
    assert "backup written" in result.stdout
    assert '{"' not in shown
    env = settings_env(sqlite_url, tmp_path, LOG_FILE="toolkit.log")
    result, shown = run_cli_on_terminal(env, "backup")
    assert result.returncode == 0, shown
    assert "backup_written" not in shown
    [logged] = [orjson.loads(x) for x in (tmp_path / "toolkit.log").read_text().splitlines()]
    assert logged["event"] == "backup_written"
