"""`timedify send-webhook` against a running service and an unreachable one (O11)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.cli import run_cli
from tests.support.fakes import permissive_server
from tests.support.helpers import events
from tests.support.servers import ServiceProcess
from tests.support.settings import SHOP, settings_env


def test_send_webhook_to_a_running_service(db_url: str, tmp_path: Path) -> None:
    """The README's quick start: serve, send a signed webhook, 200; unsigned is 401."""
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false")
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        sent = run_cli(
            env, "send-webhook", "app/uninstalled", "--url", service.url, "--shop", SHOP, "--json"
        )
        assert sent.returncode == 0, sent.stderr
        assert orjson.loads(sent.stdout)["status"] == 200
        # A topic without a path of its own goes to the unified path, where it is acknowledged.
        other = run_cli(env, "send-webhook", "orders/create", "--url", service.url, "--json")
        assert other.returncode == 0, other.stdout
        assert orjson.loads(other.stdout)["url"] == service.url + "/webhooks"
        import httpx

        unsigned = httpx.post(service.url + "/webhooks/app/uninstalled", content=b"{}")
        assert unsigned.status_code == 401
    finally:
        assert service.stop_gracefully()
    assert sorted(e["topic"] for e in events(db_url)) == ["app/uninstalled", "orders/create"]


def test_send_webhook_reports_an_unreachable_service(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    result = run_cli(env, "send-webhook", "shop/redact", "--url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert "could not reach" in result.stderr
    assert "connection refused (nothing listens on that port" in result.stderr


def test_send_webhook_wants_a_scheme_in_the_url(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    result = run_cli(env, "send-webhook", "shop/redact", "--url", "127.0.0.1:8000")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --url 127.0.0.1:8000 has no scheme: add http:// or https:// (http://127.0.0.1:8000)"
    )


@pytest.mark.parametrize(
    ("topic", "suggestion"),
    [
        ("app/uninstaled", "did you mean app/uninstalled?"),
        ("app/subscriptions_update", "did you mean app_subscriptions/update?"),
        ("orders/create", "(it handles app/uninstalled, "),
    ],
)
def test_a_topic_the_app_does_not_handle_is_sent_with_a_warning(
    tmp_path: Path, topic: str, suggestion: str
) -> None:
    """Acknowledged (the service stores it as ignored), so exit 0, but said on stderr and ⚠️."""
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    with permissive_server() as (url, _received):
        result = run_cli(env, "send-webhook", topic, "--url", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("⚠️")
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith(f"warning: {topic} is not a topic this app handles")
    assert suggestion in warning


def test_an_unusable_payload_file_is_a_command_line_mistake(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    for name in ("missing.json", "bad.json"):
        result = run_cli(env, "send-webhook", "shop/redact", "--payload", str(tmp_path / name))
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: cannot use --payload {tmp_path / name}")
