"""O2 `health-check` and O3 `alerting-check`: the real CLI against real logs, databases, servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.cli import run_cli
from tests.support.fakes import capture_server, permissive_server
from tests.support.pgcluster import free_port
from tests.support.rows import (
    ComplianceRequest,
    DeadLetter,
    WebhookEvent,
    compliance_row,
    dead_letter_row,
    event_row,
    heartbeat,
    insert_rows,
)
from tests.support.servers import threaded_server
from tests.support.settings import make_settings, settings_env
from timedify.models import EventState, Shop

FLY_PREFIX = "{time} app[683d5e0b] ams [info]"


def log_line(
    event: str, level: str = "info", age: timedelta = timedelta(minutes=5), **fields: Any
) -> str:
    when = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps({"event": event, "level": level, "time": when, **fields}).decode()


def db_error(age: timedelta = timedelta(minutes=5)) -> str:
    return log_line(
        "webhook_rejected",
        "error",
        age,
        status=503,
        reason="database_unavailable",
        error_class="db",
    )


def write_log(path: Path, lines: list[str], fly: bool) -> Path:
    if fly:
        lines = [
            FLY_PREFIX.format(time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) + x
            for x in lines
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return settings_env(f"sqlite:///{tmp_path}/none.sqlite3", tmp_path)


@pytest.mark.parametrize("fly", [False, True], ids=["json", "fly-prefixed"])
@pytest.mark.parametrize(
    ("errors", "code", "state"), [(0, 0, "OK"), (2, 1, "WARNING"), (5, 2, "CRITICAL")]
)
def test_alerting_exit_codes_on_crafted_logs(
    env: dict[str, str], tmp_path: Path, fly: bool, errors: int, code: int, state: str
) -> None:
    """O3: db errors 0 / 2 / 5 against the default 1:5 threshold give OK / WARNING / CRITICAL."""
    ok = [log_line("webhook_accepted", status=200, topic="app/uninstalled")] * 50
    log = write_log(tmp_path / "app.log", ok + [db_error()] * errors, fly)
    result = run_cli(env, "alerting-check", "--logs", str(log), "--no-db")
    assert result.returncode == code, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"TIMEDIFY {state} - ")
    assert f"db_errors={errors};1;5;0" in first.split(" | ", 1)[1]


def test_alerting_reads_stdin_and_respects_since(env: dict[str, str]) -> None:
    """`fly logs | timedify alerting-check --logs -`: lines older than --since do not count."""
    old = [db_error(age=timedelta(hours=30))] * 20
    recent = [log_line("shopify_call", "warning", status=429, error_class="http_429")] * 12
    lines = [FLY_PREFIX.format(time="2026-11-28T06:00:01Z") + x for x in old + recent]
    result = run_cli(
        env, "alerting-check", "--logs", "-", "--since", "24h", "--no-db", "--json",
        stdin="\n".join(lines).encode(),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    doc = orjson.loads(result.stdout)
    values = {f["name"]: f.get("value") for f in doc["findings"]}
    assert values["db_errors"] == 0
    assert values["http_429"] == 12
    assert doc["state"] == "WARNING"


def test_alerting_unknown_when_the_log_cannot_be_read(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(env, "alerting-check", "--logs", str(tmp_path / "missing.log"), "--no-db")
    assert result.returncode == 3
    assert result.stdout.startswith("TIMEDIFY UNKNOWN - logs: cannot read")
    assert "Traceback" not in result.stderr


def test_alerting_bad_option_is_unknown(env: dict[str, str]) -> None:
    result = run_cli(env, "alerting-check", "--since", "yesterday", "--no-db")
    assert result.returncode == 3
    assert result.stdout.startswith("TIMEDIFY UNKNOWN - not a duration")


def test_alerting_reads_the_database(db_url: str, tmp_path: Path) -> None:
    """Dead letters, a stale backlog and a compliance deadline, from a real database."""
    env = settings_env(db_url, tmp_path)
    assert run_cli(env, "alerting-check").returncode == 0
    event_ids = insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(age=timedelta(days=1), state=EventState.DEAD),
            event_row(age=timedelta(minutes=10), state=EventState.RECEIVED),
            event_row(age=timedelta(hours=3), state=EventState.RECEIVED, synthetic=True),
        ],
    )
    insert_rows(db_url, DeadLetter, [dead_letter_row(event_ids[0], resolved_age=None)])
    insert_rows(db_url, ComplianceRequest, [compliance_row(deadline_in=timedelta(days=5))])
    result = run_cli(env, "alerting-check", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    findings = {f["name"]: f for f in orjson.loads(result.stdout)["findings"]}
    assert findings["dead_letters"]["state"] == "WARNING"
    assert findings["dead_letters"]["value"] == 1
    # The synthetic event (3 h old) is not counted; the real one is 10 minutes old.
    assert findings["backlog_age"]["state"] == "WARNING"
    assert 590 <= findings["backlog_age"]["value"] < 3600
    assert findings["compliance_due"]["state"] == "WARNING"
    insert_rows(db_url, ComplianceRequest, [compliance_row(deadline_in=timedelta(hours=-1))])
    overdue = run_cli(env, "alerting-check")
    assert overdue.returncode == 2
    assert "compliance_due" in overdue.stdout.splitlines()[0]


def test_alerting_sees_compliance_webhooks_the_worker_never_applied(
    db_url: str, tmp_path: Path
) -> None:
    """A failing customers/redact has no request row yet; its deadline runs from receipt."""
    env = settings_env(db_url, tmp_path)
    insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(age=timedelta(days=25), state=EventState.DEAD, topic="customers/redact"),
            event_row(age=timedelta(days=29), state=EventState.PROCESSED, topic="shop/redact"),
            event_row(age=timedelta(days=29), topic="shop/redact", synthetic=True,
                      state=EventState.RECEIVED),
        ],
    )  # fmt: skip
    warn = orjson.loads(run_cli(env, "alerting-check", "--json").stdout)
    due = next(f for f in warn["findings"] if f["name"] == "compliance_due")
    assert (due["state"], due["value"]) == ("WARNING", 1)
    insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(
                age=timedelta(days=29), state=EventState.RETRYING, topic="customers/data_request"
            )
        ],
    )
    crit = run_cli(env, "alerting-check")
    assert crit.returncode == 2
    assert "2 open compliance requests due within 7 days (1 within 2 days" in crit.stdout


def test_alerting_database_unreachable_is_unknown(tmp_path: Path) -> None:
    env = settings_env("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    result = run_cli(env, "alerting-check")
    assert result.returncode == 3
    assert "cannot read the database" in result.stdout


def test_alerting_notifies_only_when_not_ok(env: dict[str, str], tmp_path: Path) -> None:
    """--notify posts {"text": ...} to a Slack-compatible webhook, and only on a problem."""
    good = write_log(tmp_path / "good.log", [log_line("webhook_accepted")], fly=False)
    bad = write_log(tmp_path / "bad.log", [db_error()] * 6, fly=False)
    with capture_server() as (hook_url, received):
        assert (
            run_cli(
                env, "alerting-check", "--logs", str(good), "--no-db", "--notify", hook_url
            ).returncode
            == 0
        )
        assert received == []
        result = run_cli(env, "alerting-check", "--logs", str(bad), "--no-db", "--notify", hook_url)
    assert result.returncode == 2
    assert len(received) == 1
    method, _path, body = received[0]
    assert method == "POST"
    text = orjson.loads(body)["text"]
    assert text.startswith("TIMEDIFY CRITICAL - ")
    assert "db_errors" in text


def test_alerting_notify_failure_keeps_the_result(env: dict[str, str], tmp_path: Path) -> None:
    bad = write_log(tmp_path / "bad.log", [db_error()] * 6, fly=False)
    result = run_cli(
        env, "alerting-check", "--logs", str(bad), "--no-db", "--notify", "http://127.0.0.1:9"
    )
    assert result.returncode == 2
    assert "notification failed" in result.stderr


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    with threaded_server(make_settings(db_url, tmp_path)) as (url, _app):
        yield url, settings_env(db_url, tmp_path), db_url


def test_alerting_probes_a_url(live: tuple[str, dict[str, str], str]) -> None:
    url, env, db_url = live
    warn = run_cli(env, "alerting-check", "--no-db", "--url", url)
    assert warn.returncode == 1  # no worker heartbeat: /health says warn
    heartbeat(db_url)
    assert run_cli(env, "alerting-check", "--no-db", "--url", url).returncode == 0
    assert run_cli(env, "alerting-check", "--no-db", "--url", "http://127.0.0.1:9").returncode == 2


def test_health_check_passes_against_a_live_service(live: tuple[str, dict[str, str], str]) -> None:
    """O2: every route refuses unsigned requests with 401; health passes with a live worker."""
    url, env, db_url = live
    heartbeat(db_url)
    result = run_cli(env, "health-check", "--url", url, "--warn-ms", "5000", "--crit-ms", "10000")
    assert result.returncode == 0, result.stdout
    for path in (
        "/webhooks/app/uninstalled",
        "/webhooks/shop/redact",
        "/webhooks/app/subscriptions_update",
        "/webhooks:",
    ):
        assert f"✅ {path}" in result.stdout
    assert result.stdout.count("unsigned request refused with 401") == 8
    assert "all checks passed" in result.stdout


def test_health_check_warns_without_a_worker(live: tuple[str, dict[str, str], str]) -> None:
    url, env, _db_url = live
    result = run_cli(
        env, "health-check", "--url", url, "--json", "--crit-ms", "10000", "--warn-ms", "5000"
    )
    assert result.returncode == 1
    doc = orjson.loads(result.stdout)
    health = next(c for c in doc["checks"] if c["name"] == "/health")
    assert health["status"] == "warning"
    assert "worker:heartbeat" in health["text"]


def test_health_check_fails_a_service_that_accepts_unsigned_webhooks(env: dict[str, str]) -> None:
    with permissive_server() as (url, _received):
        result = run_cli(env, "health-check", "--url", url)
    assert result.returncode == 2
    assert result.stdout.count("ACCEPTED an unsigned request") == 8


def test_health_check_unreachable_is_critical(env: dict[str, str]) -> None:
    result = run_cli(env, "health-check", "--url", "http://127.0.0.1:9", "--no-config")
    assert result.returncode == 2
    assert "unreachable" in result.stdout
    assert "Traceback" not in result.stderr


def test_health_check_of_a_service_that_is_down_is_one_line(env: dict[str, str]) -> None:
    """One ❌ naming why (refused), not one per probe; the configuration is not judged then."""
    port = free_port()
    result = run_cli(env, "health-check", "--url", f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stdout.count("❌") == 1
    assert f"❌ service: http://127.0.0.1:{port} unreachable: connection refused" in result.stdout
    assert "CRITICAL failures: 1 check, 1 failed, 0 warnings" in result.stdout


@pytest.mark.parametrize("command", [["health-check", "--url"], ["status", "--url"], ["smoke"]])
def test_a_url_without_scheme_says_add_http(env: dict[str, str], command: list[str]) -> None:
    result = run_cli(env, *command, "127.0.0.1:8000")
    assert result.returncode == 2
    assert "has no scheme: add http:// or https:// (http://127.0.0.1:8000)" in result.stderr
    assert "UnsupportedProtocol" not in result.stdout + result.stderr


def test_alerting_check_names_why_the_url_is_unreachable(env: dict[str, str]) -> None:
    result = run_cli(env, "alerting-check", "--no-db", "--url", "http://nonexistent.invalid")
    assert result.returncode == 2
    assert "unknown host (the name does not resolve)" in result.stdout


def test_shops_needing_reauthentication_warn_in_alerting_check_and_status(
    db_url: str, tmp_path: Path
) -> None:
    """S4: a shop whose refresh Shopify refused is reported until the merchant opens the app."""
    now = datetime.now(UTC)
    shop = {"installed": True, "created_at": now, "updated_at": now}
    insert_rows(
        db_url,
        Shop,
        [
            {**shop, "domain": "refused.myshopify.com", "needs_reauth_at": now},
            {**shop, "domain": "fine.myshopify.com", "needs_reauth_at": None},
            {**shop, "domain": "gone.myshopify.com", "installed": False, "needs_reauth_at": now},
        ],
    )
    env = settings_env(db_url, tmp_path)
    result = run_cli(env, "alerting-check", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    findings = {f["name"]: f for f in orjson.loads(result.stdout)["findings"]}
    assert findings["shops_reauth"]["state"] == "WARNING"
    assert findings["shops_reauth"]["value"] == 1
    assert "refused.myshopify.com" in findings["shops_reauth"]["text"]
    status = run_cli(env, "status", "--json")
    assert orjson.loads(status.stdout)["shops_needing_reauth"] == ["refused.myshopify.com"]
    assert "shops needing re-authentication: 1" in run_cli(env, "status").stdout
