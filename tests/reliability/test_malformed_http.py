"""Requests the HTTP parser refuses before the app runs (W2): `Content-Length` together with
`Transfer-Encoding: chunked` (request smuggling), a NUL in a header, a broken request line.
Each gets our JSON `400` and its connection closed; nothing is stored, and a head that never
completes gets our JSON `408`. Real `timedify serve`, both databases, raw sockets.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.testing import signed_webhook

MALFORMED = {
    "content-length with chunked": (
        b"POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "nul in a header": b"POST /webhooks HTTP/1.1\r\nHost: x\r\nX-Shopify-Topic: a\x00b\r\n\r\n",
    "broken request line": b"POST /webhooks HTTP/9\r\n\r\n",
}


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(
        db_url, tmp_path, WORKER_IN_PROCESS="false", HEADER_READ_TIMEOUT_SECONDS="0.5"
    )
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


def _exchange(port: int, request: bytes) -> bytes:
    """Send `request`; everything the server answered until it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_malformed_http_gets_our_json_400_and_an_unfinished_head_our_408(
    service: ServiceProcess, db_url: str
) -> None:
    for name, request in MALFORMED.items():
        answer = _exchange(service.port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), (name, answer)
        assert b"content-type: application/json" in head, name
        assert b"connection: close" in head, name
        assert body.startswith(b'{"error": "malformed_request"'), name
    answer = _exchange(service.port, b"POST /webhooks HTTP/1.1\r\nHost: x\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"content-type: application/json" in head
    assert body.startswith(b'{"error": "head_timeout"')
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    assert post_webhook(service.url, hook).status_code == 200  # the others are unaffected
    assert [e["webhook_id"] for e in events(db_url)] == [hook.webhook_id]  # nothing else stored
