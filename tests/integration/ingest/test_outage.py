"""W4 and H1 when the database fails: 503 with Retry-After, /health fail, recovery by itself.

Each test owns the database it breaks (its own SQLite file or its own PostgreSQL server).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.helpers import events, post_webhook
from tests.support.pgcluster import PgCluster
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings
from tests.support.sqlite_lock import sqlite_locked_by_another_process
from timedify.db import sqlite_path
from timedify.testing import signed_webhook


def timed_post(url: str, topic: str = "app/uninstalled") -> tuple[httpx.Response, float, str]:
    hook = signed_webhook(topic, SHOP, SECRET)
    started = time.monotonic()
    response = post_webhook(url, hook, timeout=10)
    return response, time.monotonic() - started, hook.webhook_id


def timed_health(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url + "/health", timeout=5)
    return response, time.monotonic() - started


def test_sqlite_locked_by_another_process_gives_503_then_recovers(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A locked file: 503 + Retry-After within the bound, nothing stored; 200 after release."""
    settings = make_settings(
        sqlite_url, tmp_path, db_busy_timeout_ms=300, ingest_timeout_seconds=2.0
    )
    path = sqlite_path(sqlite_url)
    assert path is not None
    with threaded_server(settings) as (url, _app):
        with sqlite_locked_by_another_process(path):
            response, elapsed, refused_id = timed_post(url)
            assert response.status_code == 503
            assert response.headers["retry-after"] == str(settings.retry_after_seconds)
            assert elapsed < 5, "Shopify gives up after 5 s: the answer must come before"
            health, health_elapsed = timed_health(url)
            assert health.status_code == 503
            assert health.json()["status"] == "fail"
            assert health_elapsed < 1
        response, _elapsed, accepted_id = timed_post(url)
        assert response.status_code == 200
        assert timed_health(url)[0].status_code == 200
    assert [e["webhook_id"] for e in events(sqlite_url)] == [accepted_id]
    assert refused_id != accepted_id


def test_sqlite_file_deleted_makes_health_fail(sqlite_url: str, tmp_path: Path) -> None:
    """The system we replace stayed green with its database file deleted; we must not."""
    settings = make_settings(sqlite_url, tmp_path)
    path = sqlite_path(sqlite_url)
    assert path is not None
    with threaded_server(settings) as (url, _app):
        assert timed_health(url)[0].status_code == 200
        path.unlink()
        health, elapsed = timed_health(url)
        assert health.status_code == 503
        assert "missing" in health.json()["checks"]["database:connection"][0]["output"]
        assert elapsed < 1


def test_postgres_stopped_gives_503_and_health_fail_then_recovers(
    own_pg: tuple[PgCluster, str], tmp_path: Path
) -> None:
    """W4/H1: PostgreSQL stopped -> 503 quickly and /health 503 within 1 s; started -> 200."""
    cluster, db_url = own_pg
    settings = make_settings(db_url, tmp_path)
    with threaded_server(settings) as (url, _app):
        first, _elapsed, first_id = timed_post(url)
        assert first.status_code == 200
        cluster.stop("immediate")
        for _ in range(3):
            response, elapsed, _ = timed_post(url)
            assert response.status_code == 503
            assert "retry-after" in response.headers
            assert elapsed < 5
            health, health_elapsed = timed_health(url)
            assert health.status_code == 503
            assert health.json()["status"] == "fail"
            assert health_elapsed < 1
        cluster.start()
        deadline = time.monotonic() + 15
        while True:
            response, _elapsed, last_id = timed_post(url)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, "the service recovers without a restart"
        assert timed_health(url)[0].status_code == 200
    stored = {e["webhook_id"] for e in events(db_url)}
    assert {first_id, last_id} <= stored
    assert len(stored) == 2, "requests refused while the database was down were not stored"
