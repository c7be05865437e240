"""The `timedify` command itself: version and start-up."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli
from timedify import __version__


def test_version_prints_and_exits_0(tmp_path: Path) -> None:
    result = run_cli({}, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_help_lists_every_command_with_a_whole_summary(tmp_path: Path) -> None:
    """Click would cut each summary at the width with `...`; ours end where the phrase does."""
    result = run_cli({"COLUMNS": "80"}, "--help")
    assert result.returncode == 0
    commands = result.stdout.split("Commands:", 1)[1]
    assert "..." not in commands
    assert "Start the webhook service (with the worker in-process by" in commands
    assert "Check a running service's health and routes" in commands
