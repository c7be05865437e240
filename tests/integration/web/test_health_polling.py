"""H1 under concurrent polling: a deploy gate, load balancers and monitors asking at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.support.servers import threaded_server
from tests.support.settings import make_settings


async def _poll(url: str, clients: int, rounds: int) -> list[tuple[int, float]]:
    async with httpx.AsyncClient(timeout=5) as client:

        async def one() -> tuple[int, float]:
            started = time.monotonic()
            response = await client.get(url + "/health")
            return response.status_code, time.monotonic() - started

        results: list[tuple[int, float]] = []
        for _ in range(rounds):
            results += await asyncio.gather(*(one() for _ in range(clients)))
        return results


def test_concurrent_health_requests_all_pass(db_url: str, tmp_path: Path) -> None:
    """Concurrent requests share one database probe instead of failing each other."""
    with threaded_server(make_settings(db_url, tmp_path)) as (url, _app):
        results = asyncio.run(_poll(url, clients=16, rounds=5))
    assert [status for status, _ in results] == [200] * 80
    assert max(elapsed for _, elapsed in results) < 1, "H1: within 1 s, always"


def test_a_deleted_database_file_fails_at_once_despite_recent_results(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Results from memory never hide what this process can see now (the file is gone)."""
    from timedify.db import sqlite_path

    with threaded_server(make_settings(sqlite_url, tmp_path)) as (url, _app):
        assert httpx.get(url + "/health").status_code == 200
        path = sqlite_path(sqlite_url)
        assert path is not None
        path.unlink()
        response = httpx.get(url + "/health")
    assert response.status_code == 503
    assert "missing" in response.json()["checks"]["database:connection"][0]["output"]
