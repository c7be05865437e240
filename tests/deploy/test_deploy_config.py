"""fly.toml and the GitHub workflows, read with real TOML/YAML parsers (D2, D3).

The last tests hold every `timedify ...` these files run against the real CLI: a command or
option that does not exist would only fail in production (a release that never migrates, a
daily check that never runs), so it fails here.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support import dockerfile
from tests.support.workflows import WORKFLOWS, run_scripts, steps, workflow

ROOT = Path(__file__).resolve().parents[2]
SECRET_SETTINGS = {"SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "SHOPIFY_API_SECRET_PREVIOUS"}
SECRET_SETTINGS |= {"DATABASE_URL", "METRICS_TOKEN", "SENTRY_DSN"}


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return tomllib.loads((ROOT / "fly.toml").read_text())


def test_fly_health_check_gates_deploys(fly: dict[str, Any]) -> None:
    """D2: /health with grace 20 s, interval 10 s, timeout 2 s on the app's port."""
    service = fly["http_service"]
    (check,) = service["checks"]
    assert check["path"] == "/health"
    assert check.get("method", "GET") == "GET"
    assert (check["grace_period"], check["interval"], check["timeout"]) == ("20s", "10s", "2s")
    runtime = dockerfile.parse(ROOT / "Dockerfile")[-1]
    assert service["internal_port"] == int(fly["env"]["PORT"]) == int(runtime.env()["PORT"])
    assert service["processes"] == ["app"]


def test_fly_release_migrates_and_deploys_roll(fly: dict[str, Any]) -> None:
    assert fly["deploy"]["release_command"] == "timedify migrate"
    assert fly["deploy"]["strategy"] == "rolling"
    assert fly["processes"] == {"app": "timedify serve", "worker": "timedify worker"}


def test_fly_volume_is_the_images_only_writable_path(fly: dict[str, Any]) -> None:
    runtime = dockerfile.parse(ROOT / "Dockerfile")[-1]
    (mount,) = fly["mounts"]
    assert [mount["destination"]] == runtime.exec_form("VOLUME") == [fly["env"]["TMP_DIR"]]


def test_fly_file_holds_no_secret(fly: dict[str, Any]) -> None:
    """Secrets are set with `fly secrets set`, never in the committed file."""
    assert not SECRET_SETTINGS & set(fly["env"])
    text = (ROOT / "fly.toml").read_text()
    assert not re.search(r"(postgres(ql)?|https?)://[^\s\"]*@", text), "credentials in a URL"


def test_ci_runs_lint_and_the_readme_test_command() -> None:
    ci = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    scripts = run_scripts(ci)
    assert "make lint" in scripts
    assert "make test" in scripts
    assert "make test" in (ROOT / "README.md").read_text()


def test_daily_check_schedule_commands_and_failure_notice() -> None:
    """D3: every day at 06:00 UTC and on demand, the three checks, a notice on failure."""
    daily = workflow("daily-health-check.yml")
    assert daily["on"]["schedule"] == [{"cron": "0 6 * * *"}]
    assert "workflow_dispatch" in daily["on"]
    scripts = run_scripts(daily)
    for command in ("alerting-check", "retention-cleanup", "smoke"):
        assert f"timedify {command}" in scripts
    assert 'timedify smoke "$TIMEDIFY_URL"' in scripts
    notices = [step for step in steps(daily) if step.get("if", "").strip("${} ") == "failure()"]
    assert notices
    assert "ALERT_WEBHOOK_URL" in notices[0]["run"]


def test_daily_check_takes_every_secret_from_repository_secrets() -> None:
    daily = workflow("daily-health-check.yml")
    (job,) = daily["jobs"].values()
    for name in SECRET_SETTINGS & set(job["env"]):
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}", name
    used = set(
        re.findall(r"secrets\.([A-Z_]+)", (WORKFLOWS / "daily-health-check.yml").read_text())
    )
    documented = (ROOT / "docs" / "deploy.md").read_text()
    assert {name for name in used if name not in documented} == set()


def test_deploy_doc_sets_every_required_secret_with_fly() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    fly_sets = " ".join(line for line in doc.splitlines() if "fly secrets set" in line)
    for name in (
        "SHOPIFY_API_KEY",
        "SHOPIFY_API_SECRET",
        "SHOPIFY_APP_URL",
        "TOKEN_ENCRYPTION_KEY",
    ):
        assert f"{name}=" in fly_sets, name
    for topic in ("fly postgres attach", "fly scale count", "fly releases", "backup"):
        assert topic in doc, topic


# --- every `timedify ...` the deploy files run exists in the real CLI -------------------------


def invocations() -> list[tuple[str, list[str]]]:
    """(source, words) for each `timedify <command> ...` in fly.toml and the workflows."""
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    texts = [("fly.toml", fly["deploy"]["release_command"])]
    texts += [("fly.toml", command) for command in fly["processes"].values()]
    texts += [(path.name, run_scripts(workflow(path.name))) for path in WORKFLOWS.glob("*.yml")]
    found = []
    for source, text in texts:
        for match in re.finditer(r"(?:^|[\s;&|(])timedify((?:[ \t]+[^\s;&|]+)+)", text, re.M):
            found.append((source, match.group(1).split()))
    return found


@functools.cache
def cli_help(*path: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "timedify", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def subcommands(help_text: str) -> set[str]:
    section = help_text.partition("\nCommands:\n")[2]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ")}


def problems_of(words: list[str]) -> list[str]:
    """What the real CLI lacks to run `timedify <words>` (empty: runnable)."""
    path: list[str] = []
    for word in words:
        if word.startswith(("-", "$", '"')):
            break
        if path and not subcommands(cli_help(*path)):
            break  # a positional argument of a leaf command
        if word not in subcommands(cli_help(*path)):
            return [f"command `timedify {' '.join([*path, word])}` missing"]
        path.append(word)
    # Also options inside shell expansions such as ${URL:+--notify "$URL"}.
    options = set(re.findall(r"--[a-z][a-z0-9-]*", " ".join(words)))
    return [
        f"option {option} of `timedify {' '.join(path)}` missing"
        for option in sorted(options)
        if not re.search(rf"(^|[\s,/]){re.escape(option)}\b", cli_help(*path), re.M)
    ]


def test_the_deploy_files_run_timedify_commands() -> None:
    """The extraction below sees the release command, both processes and the daily checks."""
    named = {words[0] for _, words in invocations()}
    assert named >= {"migrate", "serve", "worker", "alerting-check", "retention-cleanup", "smoke"}


def test_problems_are_found_for_an_unknown_command_or_option() -> None:
    assert problems_of(["no-such-command"]) == ["command `timedify no-such-command` missing"]
    assert problems_of(["migrate", "--no-such-option"]) == [
        "option --no-such-option of `timedify migrate` missing"
    ]
    assert problems_of(["migrate", "--status"]) == []


def test_every_timedify_command_the_deploy_files_run_exists() -> None:
    """Each command (and each --option) in fly.toml and the workflows is in `timedify --help`."""
    problems = sorted(
        {f"{source}: {p}" for source, words in invocations() for p in problems_of(words)}
    )
    assert problems == []
