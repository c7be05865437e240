"""The weekly, monthly and quarterly routines' workflows and make targets, parsed for real.

Each workflow must run on its schedule, name commands that exist (`timedify ...` options are
checked against the real CLI by test_deploy_config.py; `make ...` targets here, with `make -n`)
and deliver its result where the runbook says: a chat post and an issue, a pull request, an
issue with the checklist.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.support.workflows import ROOT, WORKFLOWS, run_scripts, steps, workflow

ROUTINES = {
    "weekly-log-review.yml": "0 7 * * 1",
    "monthly-dependency-update.yml": "0 5 1 * *",
    "quarterly-security-audit.yml": "30 6 1 1,4,7,10 *",
}

MAKE = re.compile(r"\bmake ([a-z][a-z-]*)((?: [A-Z_]+=\S+)*)")


def make_dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    """`make -n ARGS` in the repository: the commands a target would run, nothing run."""
    return subprocess.run(
        ["make", "-n", "-s", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(("name", "cron"), ROUTINES.items())
def test_each_routine_runs_on_its_schedule_and_on_demand(name: str, cron: str) -> None:
    data = workflow(name)
    assert data["on"]["schedule"] == [{"cron": cron}]
    assert "workflow_dispatch" in data["on"]
    assert data["concurrency"]["cancel-in-progress"] is False


def test_every_make_target_the_workflows_run_exists() -> None:
    """`make X` in any workflow is a target of the Makefile (a renamed one fails here)."""
    found = set()
    for path in WORKFLOWS.glob("*.yml"):
        for match in MAKE.finditer(run_scripts(workflow(path.name))):
            found.add((match.group(1), match.group(2).strip()))
    assert {("lock", "UPGRADE=1"), ("audit", ""), ("lint", ""), ("test", "")} <= found
    for target, variables in sorted(found):
        done = make_dry_run(target, *variables.split())
        assert "No rule to make target" not in done.stderr, f"make {target}"


def test_lock_upgrade_flag_reaches_uv() -> None:
    upgrade = make_dry_run("lock", "UPGRADE=1").stdout.splitlines()
    plain = make_dry_run("lock").stdout.splitlines()
    assert len(upgrade) == len(plain) == 2
    assert all(line.startswith("uv pip compile") and "--upgrade" in line for line in upgrade)
    assert not any("--upgrade" in line for line in plain)
    assert {"requirements/dev.txt", "requirements/prod.txt"} <= set(" ".join(upgrade).split())


def test_weekly_review_posts_the_report_and_files_an_issue() -> None:
    weekly = workflow("weekly-log-review.yml")
    scripts = run_scripts(weekly)
    (command,) = re.findall(r"timedify logs-report[^>]*", scripts)
    assert "--logs fly.log" in command
    assert '--notify "$ALERT_WEBHOOK_URL"' in command
    assert "flyctl logs" in scripts
    assert "gh issue create" in scripts
    assert weekly["permissions"] == {"contents": "read", "issues": "write"}
    notices = [step for step in steps(weekly) if step.get("if", "").strip("${} ") == "failure()"]
    assert notices
    assert "ALERT_WEBHOOK_URL" in notices[0]["run"]
    used = set(re.findall(r"secrets\.([A-Z_]+)", (WORKFLOWS / "weekly-log-review.yml").read_text()))
    documented = (ROOT / "docs" / "deploy.md").read_text()
    assert used == {"FLY_API_TOKEN", "FLY_APP", "ALERT_WEBHOOK_URL"}
    assert {name for name in used if name not in documented} == set()


def test_monthly_update_tests_the_upgrade_and_opens_a_pull_request() -> None:
    monthly = workflow("monthly-dependency-update.yml")
    order = [step.get("run", "") for step in steps(monthly)]
    position = {
        what: next(i for i, run in enumerate(order) if what in run)
        for what in ("make lock UPGRADE=1", "make lint", "make test", "gh pr create")
    }
    assert list(position) == sorted(position, key=position.__getitem__)
    assert monthly["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "git add requirements/" in run_scripts(monthly)


def test_quarterly_audit_files_the_report_make_audit_writes() -> None:
    quarterly = workflow("quarterly-security-audit.yml")
    scripts = run_scripts(quarterly)
    assert "make audit" in scripts
    (report,) = re.findall(r"^AUDIT_REPORT \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert f"cat {report}" in scripts
    assert "gh issue create" in scripts
    audit_step = next(step for step in steps(quarterly) if "make audit" in step.get("run", ""))
    # The issue is filed even when the audit found something; the run still ends red.
    assert audit_step["continue-on-error"] is True
    assert any("failure" in step.get("if", "") for step in steps(quarterly))


def test_make_audit_runs_the_audit_script() -> None:
    assert "scripts/audit --report tmp/audit-report.md" in make_dry_run("audit").stdout


def test_dependabot_updates_the_actions_the_workflows_use() -> None:
    config: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    (update,) = config["updates"]
    assert update["package-ecosystem"] == "github-actions"
    assert update["directory"] == "/"
    assert update["schedule"]["interval"] == "monthly"


def test_the_readme_says_how_to_merge_the_update() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("### Dependency updates")[2].partition("\n## ")[0]
    for words in ("make lock UPGRADE=1", "make lint", "make test", "Dependabot", "merge"):
        assert words in section, words
