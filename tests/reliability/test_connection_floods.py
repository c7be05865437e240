"""Connection floods: thousands of connections that send nothing never starve the ones that send a
request, `/health` keeps answering within 1 s, and any overload answer is our JSON `503` with
`Retry-After` (never uvicorn's plain text). Real `timedify serve`, both databases; the attacker
uses raw sockets and reopens whatever the server closes.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.figures import record
from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.ingest.slow_clients import MAX_CONNECTIONS, MAX_IN_FLIGHT
from timedify.testing import signed_webhook


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false", BODY_READ_TIMEOUT_SECONDS="30")
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


class IdleFlood:
    """`count` connections that never send a byte, each reopened as soon as it is closed."""

    def __init__(self, port: int, count: int) -> None:
        self._port = port
        self._count = count
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.reopened = 0

    def _open(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self._port), timeout=5)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                self._selector.unregister(sock)
                sock.close()  # readable means closed by the server (it never sends us data)
                self._open()
                self.reopened += 1

    def __enter__(self) -> IdleFlood:
        for _ in range(self._count):
            self._open()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


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
