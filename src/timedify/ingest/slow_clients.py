"""Bounds on connections and request heads: in time (connections that do not send one are
closed), in size (a head over `MAX_HEAD_BYTES` gets `431` at once, as every proxy does), in
number (over `MAX_CONNECTIONS` the oldest connection that has sent nothing is closed) and in
requests answered at once (over `MAX_IN_FLIGHT` a request gets our `503` JSON with
`Retry-After`).

uvicorn bounds the wait between two requests of a connection (`timeout_keep_alive`) and the
endpoint bounds the body (`BODY_READ_TIMEOUT_SECONDS`), but nothing bounds a new connection that
never sends a byte or a request head that never completes. Each holds one of uvicorn's
`limit_concurrency` slots, and enough of them (a slow-loris attack, a broken proxy) turn every
webhook away with `503`. `head_timeout_protocol()` is uvicorn's httptools protocol plus that
bound: a head begun and not finished within it gets `408` and the connection is closed; a
connection that sent nothing is closed. Once the bound is passed, a connection is closed by the next
sweep, a fraction of the bound later; the ack path pays two dictionary operations per request.
Without the size bound a head of megabytes is read (and its values joined) whole, seconds of the
event loop during which no webhook is acknowledged and `/health` does not answer.

uvicorn's own `limit_concurrency` counts open connections, idle ones included, and answers
plain-text `503` without `Retry-After` over it: 3,000 idle connections turned every webhook and
`/health` away. It is off (`web/server.py`); connections are bounded here instead, and a
connection that has sent nothing (new, or idle between two requests) is the first to go, so it
can never starve one that has sent a request.
"""

from __future__ import annotations

import asyncio
import resource
import weakref
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from timedify.logs import RepeatedLines, get_logger

log = get_logger("timedify.http")
# An attack closes or refuses thousands of connections a second: one line per 10 s, with a count.
_overloaded_log = RepeatedLines(log, 10.0, level="warning")
_evicted_log = RepeatedLines(log, 10.0, level="warning")
_TIMEOUT_BODY = b'{"error": "head_timeout", "detail": "the request head did not arrive in time"}'
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


# nginx answers 400/414 beyond 4 x 8 KiB; Shopify's webhook heads are about 1-2 KiB.
MAX_HEAD_BYTES = 64 * 1024
_TOO_LARGE_BODY = (
    b'{"error": "request_header_fields_too_large", "detail": "the request head is over 64 KiB"}'
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)


# Requests being answered at once (uvicorn's `limit_concurrency` was 2,048, over connections).
MAX_IN_FLIGHT = 2048
# Open connections: thousands cost little memory, but each is a file descriptor; stay well under
# the process's limit (the database, logs and the Admin API client need some too).
MAX_CONNECTIONS = 4096


def connection_bound() -> int:
    """`MAX_CONNECTIONS`, lower when the process may not open that many files."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(64, min(MAX_CONNECTIONS, soft - 256))


def _overloaded_answer(retry_after: int) -> tuple[dict[str, Any], dict[str, Any]]:
    body = b'{"error": "overloaded", "detail": "too many requests in progress; retry later"}'
    start = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", str(retry_after).encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


_MALFORMED_BODY = b'{"error": "malformed_request", "detail": "the request is not valid HTTP/1.1"}'
_MALFORMED = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_MALFORMED_BODY), _MALFORMED_BODY)
)


class _HeadWatch:
    """The connections of one event loop waiting for a request head: since when, and whether
    any of it arrived. One timer sweeps them while there are any."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._interval = min(max(timeout / 4, 0.05), 1.0)
        self._waiting: dict[_HeadTimeoutProtocol, tuple[float, bool]] = {}
        self._sweeping = False
        # Connections that have sent nothing of their next request, oldest first.
        # An OrderedDict: taking the oldest of a dict emptied from its front scans the holes.
        self._idle: OrderedDict[_HeadTimeoutProtocol, None] = OrderedDict()
        # Closed to make room and not yet gone: uvicorn counts them until `connection_lost`.
        self._closing: set[_HeadTimeoutProtocol] = set()

    def idle(self, connection: _HeadTimeoutProtocol) -> None:
        self._idle[connection] = None

    def busy(self, connection: _HeadTimeoutProtocol) -> None:
        self._idle.pop(connection, None)

    def gone(self, connection: _HeadTimeoutProtocol) -> None:
        self._idle.pop(connection, None)
        self._closing.discard(connection)

    def make_room(self, connections: int, bound: int, newcomer: _HeadTimeoutProtocol) -> None:
        """Close idle connections, the oldest first (never `newcomer`), until at most `bound`
        of the `connections` open are left."""
        excess = connections - len(self._closing) - bound
        closed = 0
        while closed < excess and self._idle:
            oldest, _ = self._idle.popitem(last=False)
            if oldest is newcomer:  # the newest of them all: nobody else is idle
                self._idle[oldest] = None
                break
            self._closing.add(oldest)
            oldest.transport.close()
            closed += 1
        if closed:
            _evicted_log.log("http_idle_closed", reason="connection_bound")

    def wait(self, connection: _HeadTimeoutProtocol, begun: bool) -> None:
        self._waiting[connection] = (self._loop.time(), begun)
        if not self._sweeping:
            self._sweeping = True
            self._loop.call_later(self._interval, self._sweep)

    def done(self, connection: _HeadTimeoutProtocol) -> None:
        self._waiting.pop(connection, None)

    def _sweep(self) -> None:
        limit = self._loop.time() - self._timeout
        expired = [(c, begun) for c, (since, begun) in self._waiting.items() if since <= limit]
        for connection, begun in expired:
            del self._waiting[connection]
            connection.head_timed_out(begun)
        if expired:
            # One line per sweep, not per connection: an attack does not flood the logs.
            log.warning(
                "http_head_timeout",
                closed=len(expired),
                answered_408=sum(begun for _, begun in expired),
                timeout_s=self._timeout,
            )
        if self._waiting:
            self._loop.call_later(self._interval, self._sweep)
        else:
            self._sweeping = False


class _HeadTimeoutProtocol(HttpToolsProtocol):
    head_timeout: float = 10.0
    max_connections: int = MAX_CONNECTIONS
    max_in_flight: int = MAX_IN_FLIGHT
    overloaded: tuple[dict[str, Any], dict[str, Any]]
    _watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HeadWatch]
    _watch: _HeadWatch

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes: int | None = 0  # None: the head is complete, the body follows
        watch = self._watches.get(self.loop)
        if watch is None:
            watch = self._watches[self.loop] = _HeadWatch(self.loop, self.head_timeout)
        self._watch = watch
        watch.wait(self, False)
        self._idle = True
        watch.idle(self)
        if len(self.connections) > self.max_connections:
            watch.make_room(len(self.connections), self.max_connections, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.done(self)
        self._watch.gone(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._idle:
            self._idle = False
            self._watch.busy(self)
        if self._head_bytes is None:
            super().data_received(data)
            return
        self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after the parser took this chunk: count it against the bound.
        if self._head_bytes is not None and self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._watch.wait(self, True)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._watch.done(self)
        if len(self.tasks) < self.max_in_flight:
            super().on_headers_complete()
            return
        # uvicorn picks `self.app` for the request here; over the bound it is our 503.
        app, self.app = self.app, self._answer_overloaded
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    async def _answer_overloaded(self, _scope: Any, _receive: Any, send: Any) -> None:
        start, body = self.overloaded
        await send(start)
        await send(body)
        _overloaded_log.log("http_overloaded", status=503, limit=self.max_in_flight)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle until the next request
            self._idle = True
            self._watch.idle(self)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0  # the next request of this connection starts its head

    def _head_too_large(self) -> None:
        self._watch.done(self)
        if not self.transport.is_closing():
            answering = self.cycle is not None and not self.cycle.response_complete
            if not answering:
                self.transport.write(_TOO_LARGE)
            self.transport.close()
            log.warning(
                "webhook_rejected", reason="head_too_large", status=431, limit=MAX_HEAD_BYTES
            )

    def send_400_response(self, msg: str) -> None:
        """What the HTTP parser refused (Content-Length with chunked, a NUL in a header, ...):
        our JSON `400` instead of uvicorn's plain text (W2); the app never sees the request."""
        self.transport.write(_MALFORMED)
        self.transport.close()

    def head_timed_out(self, begun: bool) -> None:
        if self.transport.is_closing():
            return
        # A pipelined request still being answered: a 408 would land inside its response.
        answering = self.cycle is not None and not self.cycle.response_complete
        if begun and not answering:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def head_timeout_protocol(seconds: float, retry_after: int = 5) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a `seconds` bound on each request head, the connection
    and in-flight bounds, and `retry_after` seconds in its overload answer."""
    namespace: dict[str, Any] = {
        "head_timeout": seconds,
        "max_connections": connection_bound(),
        "overloaded": _overloaded_answer(retry_after),
        "_watches": weakref.WeakKeyDictionary(),
    }
    return type("HeadTimeoutProtocol", (_HeadTimeoutProtocol,), namespace)
