"""Connection floods: thousands of connections that send nothing never starve the ones that send a
request, `/health` keeps answering within 1 s, and any overload answer is our JSON `503` with
`Retry-After` (never uvicorn's plain text). Real `timedify serve`, both databases; the attacker
uses raw sockets and reopens whatever the server closes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.figures import record
from tests.support.floods import IdleFlood
from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.ingest.slow_clients import MAX_CONNECTIONS, MAX_IN_FLIGHT
from timedify.testing import signed_webhook

# One flood at a time: two at once on a 2-core machine measure the machine, not the service.
pytestmark = pytest.mark.xdist_group("connection_floods")


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false", BODY_READ_TIMEOUT_SECONDS="30")
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


def _health(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url + "/health", timeout=5)
    return response, time.monotonic() - started


def test_idle_connections_never_starve_webhooks_or_health(
    service: ServiceProcess, db_url: str
) -> None:
    hooks = [signed_webhook("app/scopes_update", SHOP, SECRET) for _ in range(20)]
    answers: list[tuple[int, float]] = []
    health: list[float] = []
    with IdleFlood(service.port, MAX_CONNECTIONS + 1000) as flood:
        for hook in hooks:
            started = time.monotonic()
            status = post_webhook(service.url, hook, timeout=5).status_code
            answers.append((status, time.monotonic() - started))
            response, elapsed = _health(service.url)
            assert response.headers["content-type"].endswith("json")  # ours, not plain text
            health.append(elapsed)
            time.sleep(0.1)
    record(
        f"{MAX_CONNECTIONS + 1000} idle connections, reopened when closed "
        f"({db_url.split(':')[0].split('+')[0]})",
        sent=len(hooks),
        acknowledged=sum(status == 200 for status, _ in answers),
        max_answer_s=round(max(e for _, e in answers), 3),
        health_max_s=round(max(health), 3),
        reopened=flood.reopened,
    )
    assert [status for status, _ in answers] == [200] * len(hooks)
    assert max(e for _, e in answers) < 5
    assert max(health) < 1
    assert flood.reopened > 0, "the oldest idle connections were closed to make room"
    assert {h.webhook_id for h in hooks} <= {e["webhook_id"] for e in events(db_url)}


def _stalled_bodies(port: int, count: int) -> list[socket.socket]:
    """`count` requests whose head arrived and whose body never does (each one in flight)."""
    head = b"POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(head)
        socks.append(sock)
    return socks


def test_requests_over_the_in_flight_bound_get_json_503_with_retry_after(
    service: ServiceProcess, db_url: str
) -> None:
    socks = _stalled_bodies(service.port, MAX_IN_FLIGHT + 50)
    try:
        time.sleep(1)  # every head has been read and its request started
        hook = signed_webhook("app/scopes_update", SHOP, SECRET)
        refused = post_webhook(service.url, hook, timeout=5)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["error"] == "overloaded"
        response, elapsed = _health(service.url)
        assert elapsed < 1
        assert response.headers["content-type"].endswith("json")  # ours, not plain text
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 10
    while post_webhook(service.url, hook, timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the bound is released when the requests end"
        time.sleep(0.1)
    assert b"http_overloaded" in service.log_path.read_bytes()
