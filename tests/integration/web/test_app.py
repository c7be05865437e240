"""The worker inside `serve` (P1, H1): webhooks over HTTP end processed; /health watches it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.helpers import events
from tests.support.helpers import post_webhook as post
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings
from timedify.ingest import webhooks
from timedify.testing import signed_webhook
from timedify.web.app import background_services


def test_each_topic_is_processed_by_the_in_process_worker(db_url: str, tmp_path: Path) -> None:
    """README quick start: one webhook per topic, all processed, /health/webhooks says so."""
    settings = make_settings(db_url, tmp_path, worker_in_process=True)
    with threaded_server(settings, background_services(settings)) as (url, _app):
        for topic in webhooks.TOPICS:
            assert post(url, signed_webhook(topic, SHOP, SECRET)).status_code == 200
        smoke = signed_webhook("shop/redact", webhooks.SYNTHETIC_SHOP_DOMAIN, SECRET)
        assert post(url, smoke).status_code == 200
        deadline = time.monotonic() + 20
        while {e["state"] for e in events(db_url)} != {"processed"}:
            assert time.monotonic() < deadline, "events were not processed"
            time.sleep(0.05)
        topics = httpx.get(url + "/health/webhooks", timeout=5).json()["topics"]
        health = httpx.get(url + "/health", timeout=5).json()
        metrics = httpx.get(url + "/metrics", timeout=5).text
    for topic in webhooks.TOPICS:
        assert topics[topic]["pending"] == 0
        assert topics[topic]["last_processed_at"] is not None
    assert health["checks"]["worker:heartbeat"][0]["status"] == "pass"
    assert health["status"] == "pass"
    # The smoke test's event is processed like the others and kept out of the real counts (O7).
    assert 'timedify_events_processed_total{outcome="processed",topic="shop/redact"} 1.0' in metrics
    assert 'timedify_events_processed_total{outcome="synthetic",topic="shop/redact"} 1.0' in metrics


class DeadWorker:
    """A background service whose thread has died."""

    def __init__(self, _services: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def alive(self) -> bool:
        return False


def test_health_fails_when_the_in_process_worker_died(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    with threaded_server(settings, [DeadWorker]) as (url, _app):
        response = httpx.get(url + "/health", timeout=5)
    assert response.status_code == 503
    check = response.json()["checks"]["worker:heartbeat"][0]
    assert check["status"] == "fail"
    assert "in-process worker has stopped" in check["output"]
