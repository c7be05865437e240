"""Slow clients are cut off (issue 7.5) and secret rotation works end to end (issue 7.7, W1)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess, threaded_server
from tests.support.settings import PREVIOUS_SECRET, SECRET, SHOP, make_settings, settings_env
from timedify.testing import signed_webhook


def test_a_client_that_stops_sending_its_body_gets_408(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, tmp_path, body_read_timeout_seconds=0.5)
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    with threaded_server(settings) as (url, _app):
        host, port = url.removeprefix("http://").split(":")
        head = [
            f"POST {hook.path()} HTTP/1.1",
            f"Host: {host}",
            f"Content-Length: {len(hook.body)}",
        ]
        head += [f"{k}: {v}" for k, v in hook.headers.items()]
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + hook.body[:5])
            # Held open instead, the read would end with the socket's 10 s timeout: an error.
            answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert events(sqlite_url) == []


def test_secret_rotation(sqlite_url: str, tmp_path: Path) -> None:
    """Old and new secret both accepted while SHOPIFY_API_SECRET_PREVIOUS is set; then only new."""
    env = settings_env(
        sqlite_url, tmp_path, WORKER_IN_PROCESS="false", SHOPIFY_API_SECRET_PREVIOUS=PREVIOUS_SECRET
    )
    during = ServiceProcess(env, tmp_path / "during.log").start()
    try:
        for secret in (SECRET, PREVIOUS_SECRET):
            assert (
                post_webhook(during.url, signed_webhook("shop/redact", SHOP, secret)).status_code
                == 200
            )
    finally:
        assert during.stop_gracefully()
    env.pop("SHOPIFY_API_SECRET_PREVIOUS")
    after = ServiceProcess(env, tmp_path / "after.log").start()
    try:
        old = post_webhook(after.url, signed_webhook("shop/redact", SHOP, PREVIOUS_SECRET))
        new = post_webhook(after.url, signed_webhook("shop/redact", SHOP, SECRET))
    finally:
        assert after.stop_gracefully()
    assert (old.status_code, new.status_code) == (401, 200)
    assert len(events(sqlite_url)) == 3
