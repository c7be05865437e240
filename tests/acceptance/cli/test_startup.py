"""The `timedify` command itself: version and start-up."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli
from timedify import __version__


def test_version_prints_and_exits_0(tmp_path: Path) -> None:
    result = run_cli({}, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__
