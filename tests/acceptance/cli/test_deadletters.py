"""O6: `timedify dead-letters`: output, --json and exit codes.

The flow runs in-process (Typer's CliRunner, both databases); the exit codes of expected
failures are checked on the real command as a subprocess.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from typer.testing import CliRunner

from tests.support.cli import run_cli
from tests.support.handlers import BROKEN, EMAIL
from tests.support.helpers import drain, store_event, table_rows
from tests.support.settings import SHOP, make_settings, settings_env
from timedify.cli import app
from timedify.errors import TimedifyError
from timedify.models import DeadLetter


def run(env: dict[str, str], *args: str) -> SimpleNamespace:
    """The command in-process; an expected failure gives its exit code as `main()` would."""
    result = CliRunner(env=env).invoke(app, list(args))
    code = result.exit_code
    if isinstance(result.exception, TimedifyError):
        code = result.exception.exit_code
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=code, stdout=result.stdout, error=result.exception)


def test_list_show_replay_cleanup(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, retry_max_attempts=2, retry_base_seconds=0.01)
    env = settings_env(db_url, tmp_path)
    empty = run(env, "dead-letters", "list")
    assert empty.returncode == 0
    assert "no dead letters" in empty.stdout

    # One that the real handler can never apply (bad payload), one that a fix will cure.
    store_event(db_url, "app_subscriptions/update", SHOP, payload={"nothing": "useful"})
    store_event(db_url, "customers/redact", SHOP)
    drain(settings, BROKEN)
    listed = run(env, "dead-letters", "list", "--json")
    assert listed.returncode == 0
    items = {i["topic"]: i for i in orjson.loads(listed.stdout)}
    assert set(items) == {"app_subscriptions/update", "customers/redact"}
    assert items["customers/redact"]["attempts"] == 2
    assert EMAIL not in listed.stdout

    human = run(env, "dead-letters", "list", "--topic", "customers/redact")
    assert human.returncode == 0
    assert "customers/redact" in human.stdout
    assert "app_subscriptions/update" not in human.stdout

    bad, curable = items["app_subscriptions/update"]["id"], items["customers/redact"]["id"]
    shown = run(env, "dead-letters", "show", str(curable), "--json")
    assert shown.returncode == 0
    detail = orjson.loads(shown.stdout)
    assert [a["outcome"] for a in detail["attempt_log"]] == ["retrying", "dead"]
    assert "customer" in detail["payload_keys"]
    assert EMAIL not in shown.stdout  # never the payload, never the customer's data
    assert run(env, "dead-letters", "show", str(curable)).returncode == 0

    missing = run(env, "dead-letters", "show", "999999")
    assert missing.returncode == 5
    assert "no dead letter with id 999999" in str(missing.error)

    failed = run(env, "dead-letters", "replay", str(bad))
    assert failed.returncode == 1
    assert "failed again, still a dead letter" in failed.stdout
    row = next(d for d in table_rows(db_url, DeadLetter) if d["id"] == bad)
    # InvalidPayload is a dead letter at its first attempt; the replay is the second.
    assert (row["replays"], row["attempts"], row["resolved_at"]) == (1, 2, None)
    assert row["error"].startswith("InvalidPayload")

    fixed = run(env, "dead-letters", "replay", "--all", "--topic", "customers/redact", "--json")
    assert fixed.returncode == 0
    assert [(r["id"], r["ok"]) for r in orjson.loads(fixed.stdout)] == [(curable, True)]
    assert run(env, "dead-letters", "replay", str(curable)).returncode == 5

    cleaned = run(env, "dead-letters", "cleanup", "--older-than", "0s", "--json")
    assert cleaned.returncode == 0
    assert orjson.loads(cleaned.stdout)["deleted"] == 1
    assert [d["id"] for d in table_rows(db_url, DeadLetter)] == [bad]

    # The malformed one can never apply: dismissed, it no longer counts as unresolved.
    assert run(env, "dead-letters", "dismiss", str(bad)).returncode == 0
    assert run(env, "dead-letters", "dismiss", str(bad)).returncode == 5
    assert orjson.loads(run(env, "dead-letters", "list", "--json").stdout) == []
    [row] = table_rows(db_url, DeadLetter)
    assert row["resolution"] == "dismissed"


def test_exit_codes_of_the_real_command(tmp_path: Path, sqlite_url: str) -> None:
    """Expected failures: one line on stderr, no traceback, the documented exit code."""
    settings = make_settings(sqlite_url, tmp_path, retry_max_attempts=1)
    store_event(sqlite_url, "app_subscriptions/update", SHOP, payload={"nothing": "useful"})
    drain(settings)
    [dead] = table_rows(sqlite_url, DeadLetter)
    env = settings_env(sqlite_url, tmp_path)
    cases: list[tuple[list[str], int, str]] = [
        (["replay", str(dead["id"])], 1, "failed again, still a dead letter"),
        (["show", "999999"], 5, "no dead letter with id 999999"),
        # Mistakes on the command line: exit 2, as Click's own usage errors.
        (["replay"], 2, "give either a dead letter ID or --all"),
        (["replay", "3", "--all"], 2, "either a dead letter ID or --all"),
        (["replay", "3", "--topic", "app/uninstalled"], 2, "go with --all"),
        (["replay", "--all", "--since", "lately"], 2, "invalid --since"),
        (["cleanup", "--older-than", "soon"], 2, "invalid duration"),
    ]
    for args, code, text in cases:
        result: subprocess.CompletedProcess[str] = run_cli(env, "dead-letters", *args)
        assert result.returncode == code, args
        assert text in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 1, result.stderr
    assert "Exit codes" in run(env, "dead-letters", "replay", "--help").stdout


def test_show_and_list_read_as_text_not_python(tmp_path: Path, sqlite_url: str) -> None:
    """No `None` or list reprs in `show`; on a 120-column terminal `list` keeps the topic and
    the time whole (only the error folds)."""
    settings = make_settings(sqlite_url, tmp_path, retry_max_attempts=1)
    store_event(sqlite_url, "app_subscriptions/update", SHOP, payload={"nothing": "useful"})
    drain(settings)
    [dead] = table_rows(sqlite_url, DeadLetter)
    env = settings_env(sqlite_url, tmp_path)
    shown = run_cli(env, "dead-letters", "show", str(dead["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "resolved_at: -\n" in shown.stdout
    assert "payload_keys: nothing\n" in shown.stdout
    assert "None" not in shown.stdout
    assert "['" not in shown.stdout

    terminal = {**env, "FORCE_COLOR": "1", "COLUMNS": "120", "NO_COLOR": ""}
    listed = run_cli(terminal, "dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    assert "╭" in listed.stdout  # drawn as on a terminal
    assert "app_subscriptions/update" in listed.stdout
    assert dead["last_failed_at"].strftime("%Y-%m-%dT%H:%M:%S") in listed.stdout
    assert max(len(line) for line in _plain(listed.stdout).splitlines()) <= 120


def _plain(text: str) -> str:
    """Text without its ANSI colour sequences."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("command", ["list", "show", "replay", "dismiss", "cleanup"])
def test_every_subcommand_documents_example_and_exit_codes(command: str, tmp_path: Path) -> None:
    """Each subcommand lists its own exit codes, not the group's (a replay fails only in
    `replay`)."""
    result = CliRunner().invoke(app, ["dead-letters", command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert "Exit codes" in result.stdout
    text = " ".join(result.stdout.split())
    assert ("a replay failed again" in text) == (command == "replay")
    assert ("5 no such" in text) == (command in ("show", "replay", "dismiss"))
    assert "2 invalid configuration or command line" in text
