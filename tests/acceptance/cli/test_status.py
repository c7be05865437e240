"""`timedify status` through the real CLI (O8)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson

from tests.support.cli import run_cli
from tests.support.handlers import BROKEN
from tests.support.helpers import drain, store_event
from tests.support.rows import WebhookEvent, event_row, insert_rows
from tests.support.settings import SHOP, make_settings, settings_env
from timedify.models import EventState


def test_status_shows_activity_without_synthetic_events(db_url: str, tmp_path: Path) -> None:
    insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(age=timedelta(minutes=5), topic="shop/redact"),
            event_row(age=timedelta(minutes=5), topic="shop/redact", state=EventState.RECEIVED),
            event_row(age=timedelta(minutes=5), topic="app/uninstalled", synthetic=True),
        ],
    )
    env = settings_env(db_url, tmp_path)
    result = run_cli(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    doc = orjson.loads(result.stdout)
    assert doc["topics"]["shop/redact"]["received_in_window"] == 2
    assert doc["topics"]["shop/redact"]["pending"] == 1
    assert "app/uninstalled" not in doc["topics"]
    assert doc["processing_latency_seconds"]["count"] == 1
    text = run_cli(env, "status")
    assert text.returncode == 0
    assert "shop/redact" in text.stdout
    assert "processing latency" in text.stdout


def test_failing_handlers_warn_and_no_none_is_printed(sqlite_url: str, tmp_path: Path) -> None:
    """A handler that keeps failing shows ⚠️ before (and besides) its dead letter; with nothing
    processed in the window the latency line says so instead of `p50 None s`."""
    settings = make_settings(sqlite_url, tmp_path, retry_max_attempts=2, retry_base_seconds=0.01)
    store_event(sqlite_url, "customers/redact", SHOP)
    drain(settings, BROKEN)
    result = run_cli(settings_env(sqlite_url, tmp_path), "status")
    assert result.returncode == 0, result.stderr
    assert "⚠️ handler failures in the last 24 h: 2" in result.stdout
    assert "no event processed in the window" in result.stdout
    assert "None" not in result.stdout
