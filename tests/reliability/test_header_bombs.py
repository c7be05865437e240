"""A request head of megabytes gets 431 at once and never holds the service (issue: header
bombs). Real `timedify serve`, real database, both kinds; the attacker uses raw sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.checks import wait_for
from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.ingest.slow_clients import MAX_HEAD_BYTES
from timedify.testing import signed_webhook

CHUNK = b"a" * 65536


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false")
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


def _bomb(service: ServiceProcess, megabytes: int) -> bytes:
    """Send a head with one header value of `megabytes` MiB; what the server answered."""
    # The socket timeout only keeps a broken server from hanging the test.
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=15)
    received = b""
    try:
        sock.sendall(b"POST /webhooks HTTP/1.1\r\nHost: x\r\nX-Bomb: ")
        for _ in range(megabytes * 16):
            sock.sendall(CHUNK)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed on us after the 431: what we want
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return received


def test_a_huge_head_gets_431_json_and_the_connection_closed(service: ServiceProcess) -> None:
    answer = _bomb(service, 16)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"application/json" in answer
    assert b"request_header_fields_too_large" in answer
    # The line is written at the end of the loop's turn, maybe after the client read the answer.
    wait_for(lambda: b"head_too_large" in service.log_path.read_bytes(), 5, "the log line")


def test_webhooks_and_health_are_answered_while_bombs_arrive(
    service: ServiceProcess, db_url: str
) -> None:
    answers: list[bytes] = []
    bombers = [
        threading.Thread(target=lambda: answers.append(_bomb(service, 32))) for _ in range(4)
    ]
    for bomber in bombers:
        bomber.start()
    hooks = [signed_webhook("app/uninstalled", SHOP, SECRET) for _ in range(20)]
    statuses = [post_webhook(service.url, hook, timeout=5).status_code for hook in hooks]
    for bomber in bombers:
        bomber.join(60)
    assert statuses == [200] * 20  # each within Shopify's 5 s (the client's timeout)
    assert all(a.startswith(b"HTTP/1.1 431 ") for a in answers)
    stored = {e["webhook_id"] for e in events(db_url)}
    assert {h.webhook_id for h in hooks} <= stored


def test_a_head_just_under_the_bound_is_read(service: ServiceProcess) -> None:
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    filler = "b" * (MAX_HEAD_BYTES - 4096)
    response = httpx.post(
        service.url + hook.path(),
        content=hook.body,
        headers={**hook.headers, "X-Filler": filler},
        timeout=10,
    )
    assert response.status_code == 200
