"""`timedify status` through the real CLI (O8)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson

from tests.support.cli import run_cli
from tests.support.rows import WebhookEvent, event_row, insert_rows
from tests.support.settings import settings_env
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
