"""A request head has a bound (HEADER_READ_TIMEOUT_SECONDS), served by the real `timedify serve`.

Slow-loris clients (a connection that sends nothing, or a head that never ends) each hold one of
uvicorn's connection slots; without the bound they hold it for ever.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.checks import wait_for
from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.db import sqlite_path
from timedify.testing import SignedWebhook, signed_webhook

pytestmark = pytest.mark.slow


@pytest.fixture
def service(sqlite_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(
        sqlite_url, tmp_path, WORKER_IN_PROCESS="false", HEADER_READ_TIMEOUT_SECONDS="1"
    )
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


def _connect(service: ServiceProcess) -> socket.socket:
    # The socket timeout only keeps a broken server from hanging the test.
    return socket.create_connection(("127.0.0.1", service.port), timeout=15)


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (head and body may arrive in separate segments)."""

    def more() -> bytes:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection mid-response"
        return chunk

    received = b""
    while b"\r\n\r\n" not in received:
        received += more()
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += more()
    return head + b"\r\n\r\n" + body


def _request(hook: SignedWebhook) -> bytes:
    lines = [f"POST {hook.path()} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(hook.body)}"]
    lines += [f"{name}: {value}" for name, value in hook.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + hook.body


def test_slow_heads_are_cut_off_while_webhooks_are_acknowledged(
    service: ServiceProcess, sqlite_url: str
) -> None:
    silent = _connect(service)
    partial = _connect(service)
    partial.sendall(b"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Shopify-Topic: x\r\n")
    with silent, partial:
        hook = signed_webhook("app/uninstalled", SHOP, SECRET)
        assert post_webhook(service.url, hook).status_code == 200
        assert _read_until_closed(silent) == b"", "closed without an answer: nothing was asked"
        answer = _read_until_closed(partial)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in answer
    assert [e["webhook_id"] for e in events(sqlite_url)] == [hook.webhook_id]
    # The sweep closes the connections, then logs its line; the line reaches the file an
    # event-loop iteration later (the log sink writes once per iteration), after the close.
    wait_for(lambda: '"http_head_timeout"' in service.logs(), 5, "the sweep's log line")
    assert "Traceback" not in service.logs()


def test_a_head_in_pieces_within_the_bound_and_an_idle_keep_alive_are_served(
    service: ServiceProcess, sqlite_url: str
) -> None:
    first = signed_webhook("app/uninstalled", SHOP, SECRET)
    second = signed_webhook("app/scopes_update", SHOP, SECRET, payload={"current": ["read_x"]})
    with _connect(service) as sock:
        request = _request(first)
        sock.sendall(request[:40])
        time.sleep(0.1)  # well inside the 1 s bound, even on a loaded machine
        sock.sendall(request[40:])
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        # Between two requests the keep-alive timeout (75 s) applies, not the head's bound.
        time.sleep(2.0)
        sock.sendall(_request(second))
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
    assert {e["webhook_id"] for e in events(sqlite_url)} == {first.webhook_id, second.webhook_id}


def test_a_late_pipelined_head_never_answers_for_the_request_before_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A 408 for an unfinished pipelined head, sent while the request before it still waits
    for its commit, would reach the client as that request's answer. The connection is closed
    instead: the first request goes unanswered and Shopify sends it again (W3 keeps it once)."""
    env = settings_env(
        sqlite_url,
        tmp_path,
        WORKER_IN_PROCESS="false",
        HEADER_READ_TIMEOUT_SECONDS="1",
        INGEST_TIMEOUT_SECONDS="4",
        DB_BUSY_TIMEOUT_MS="4000",
    )
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    path = sqlite_path(sqlite_url)
    assert path is not None
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # the first request's commit waits for this lock
        with _connect(service) as sock:
            second = _request(signed_webhook("app/uninstalled", SHOP, SECRET))
            sock.sendall(_request(signed_webhook("app/uninstalled", SHOP, SECRET)) + second[:40])
            received = _read_until_closed(sock)  # the head's bound passes at 1-1.25 s
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        assert service.stop_gracefully()
    assert received == b""
