"""The `timedify` command itself: version and start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs-report", "--bogus"], "No such option: --bogus"),
        (["logs-report", "--jobs", "-1"], "Invalid value for '--jobs'"),
        (["retention-cleanup", "--days", "many"], "Invalid value for '--days'"),
        (["shops", "sync"], "give --shop S (repeatable) or --all"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
)
def test_a_command_line_mistake_is_one_line_saying_where_the_help_is(
    args: list[str], message: str
) -> None:
    result = run_cli({}, *args)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert message in line
    assert line.endswith("--help)")
    assert result.stdout == ""


def test_the_bare_command_prints_its_help_and_exits_2() -> None:
    result = run_cli({})
    assert result.returncode == 2
    assert result.stderr.startswith("Usage: ")  # the program name as invoked
    assert "Commands:" in result.stderr
