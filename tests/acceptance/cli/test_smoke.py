"""O7: the smoke test against a live service, and against a fake that accepts anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.cli import run_cli
from tests.support.fakes import permissive_server
from tests.support.helpers import events, post_webhook
from tests.support.pgcluster import free_port
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings, settings_env
from timedify.ingest import webhooks
from timedify.testing import signed_webhook
from timedify.web.app import in_process_worker


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    with threaded_server(make_settings(db_url, tmp_path)) as (url, _app):
        yield url, settings_env(db_url, tmp_path), db_url


def test_smoke_fails_against_a_server_that_accepts_unsigned_requests(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    with permissive_server() as (url, _received):
        result = run_cli(env, "smoke", url, "--process-timeout", "1")
    assert result.returncode == 1
    assert "❌ forged webhook: answered 200: forged webhooks get through" in result.stdout
    assert "smoke test FAILED" in result.stdout


def test_smoke_with_another_secret_says_the_secret_differs(
    live: tuple[str, dict[str, str], str],
) -> None:
    """Every signed webhook refused: one line naming SHOPIFY_API_SECRET, not six 401s."""
    url, env, _db_url = live
    result = run_cli({**env, "SHOPIFY_API_SECRET": "not-the-deployed-secret-1"}, "smoke", url)
    assert result.returncode == 1
    assert "answered 401" not in result.stdout
    assert (
        "❌ signature: every signed webhook was refused with 401: the SHOPIFY_API_SECRET here is "
        "not the deployed app's" in result.stdout
    )


def test_smoke_against_nothing_is_one_line(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    result = run_cli(env, "smoke", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stdout.count("❌") == 1
    assert "unreachable: connection refused" in result.stdout


def test_smoke_without_a_worker_fails_on_processing_and_cleans_up(
    live: tuple[str, dict[str, str], str],
) -> None:
    """Every step but processing passes; the synthetic events are removed all the same."""
    url, env, db_url = live
    real = signed_webhook("app/uninstalled", SHOP, SECRET)
    assert post_webhook(url, real).status_code == 200
    result = run_cli(env, "smoke", url, "--process-timeout", "1", "--json")
    assert result.returncode == 1
    steps = {s["name"]: s for s in orjson.loads(result.stdout)["steps"]}
    for topic in webhooks.TOPICS:
        assert steps[f"webhook {topic}"]["status"] == "ok"
    assert steps["forged webhook"]["status"] == "ok"
    assert steps["processing"]["status"] == "critical"
    assert "0/6 processed" in steps["processing"]["text"]
    assert steps["cleanup"]["text"] == "6 synthetic events removed"
    assert [e["webhook_id"] for e in events(db_url)] == [real.webhook_id]


def test_smoke_lookup_shows_synthetic_events_only(live: tuple[str, dict[str, str], str]) -> None:
    url, _env, _db_url = live
    real = signed_webhook("app/uninstalled", SHOP, SECRET)
    fake = signed_webhook("app/uninstalled", webhooks.SYNTHETIC_SHOP_DOMAIN, SECRET)
    for hook in (real, fake):
        assert post_webhook(url, hook).status_code == 200
    found = httpx.get(
        url + "/smoke/events", params=[("id", real.webhook_id), ("id", fake.webhook_id)]
    ).json()
    assert found == {"events": {fake.webhook_id: "received"}}


def test_smoke_cleanup_needs_a_signature_and_spares_real_events(
    live: tuple[str, dict[str, str], str],
) -> None:
    url, _env, db_url = live
    real = signed_webhook("app/uninstalled", SHOP, SECRET)
    assert post_webhook(url, real).status_code == 200
    body = orjson.dumps({"webhook_ids": [real.webhook_id]})
    unsigned = httpx.post(url + "/smoke/cleanup", content=body)
    assert unsigned.status_code == 401
    signed = httpx.post(
        url + "/smoke/cleanup",
        content=body,
        headers={"x-timedify-hmac-sha256": webhooks.sign(body, SECRET.encode())},
    )
    assert signed.json() == {"deleted": 0}
    assert len(events(db_url)) == 1


def test_smoke_passes_against_a_live_service_with_a_worker(db_url: str, tmp_path: Path) -> None:
    """O7 end to end: acknowledged, forged one refused, processed by the worker, cleaned up."""
    settings = make_settings(db_url, tmp_path, worker_poll_seconds=0.05)
    with threaded_server(settings, background=[in_process_worker]) as (url, _app):
        real = signed_webhook("app/scopes_update", SHOP, SECRET)
        assert post_webhook(url, real).status_code == 200
        result = run_cli(settings_env(db_url, tmp_path), "smoke", url, "--process-timeout", "60")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all 6 synthetic events processed" in result.stdout
        assert "6 synthetic events removed" in result.stdout
        assert "smoke test passed" in result.stdout
        webhooks = httpx.get(url + "/health/webhooks").json()["topics"]
    # Only the real event is left, and the statistics never saw the synthetic ones.
    assert [e["webhook_id"] for e in events(db_url)] == [real.webhook_id]
    assert webhooks["shop/redact"]["received_in_window"] == 0
    assert webhooks["app/scopes_update"]["received_in_window"] == 1
