"""The Makefile and the packaging metadata a fresh clone's `make run` goes through (STYLE §7)."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[2]


def planned(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run on a machine without a virtualenv (dry run)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path}/venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_run_installs_only_the_runtime_set(tmp_path: Path) -> None:
    commands = planned("run", tmp_path)
    assert "-c requirements/prod.txt -e ." in commands
    assert "[dev]" not in commands
    assert "requirements/dev.txt" not in commands
    assert "LOG_FORMAT=console" in commands  # how to get readable logs is said


@pytest.mark.parametrize("target", ["test", "lint"])
def test_make_test_and_lint_install_the_development_set(tmp_path: Path, target: str) -> None:
    assert "-c requirements/dev.txt -e '.[dev]'" in planned(target, tmp_path)


def test_the_package_metadata_raises_no_setuptools_deprecation() -> None:
    """A TOML-table `project.license` makes every install print setuptools' warning box."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message) for w in caught if "deprecat" in str(w.message).lower()] == []
