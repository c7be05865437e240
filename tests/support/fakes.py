"""Small HTTP servers on 127.0.0.1 that stand in for things that are not Timedify.

- `permissive_server`: a broken "service" answering 200 with a passing health document to
  everything, unsigned webhooks included; the checks must call it out.
- `capture_server`: a Slack-compatible incoming webhook that records what it is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received.append((self.command, self.path, body))  # type: ignore[attr-defined]
        reply = b'{"status":"pass","checks":{},"events":{},"deleted":0}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _answer

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def _serve() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


permissive_server = _serve
capture_server = _serve
