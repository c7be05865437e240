"""Bounds on the request head: in time (connections that do not send one are closed) and in
size (a head over `MAX_HEAD_BYTES` gets `431` at once, as every proxy does).

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
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from timedify.logs import get_logger

log = get_logger("timedify.http")
_TIMEOUT_BODY = b"the request head did not arrive in time\n"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
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


class _HeadWatch:
    """The connections of one event loop waiting for a request head: since when, and whether
    any of it arrived. One timer sweeps them while there are any."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._interval = min(max(timeout / 4, 0.05), 1.0)
        self._waiting: dict[_HeadTimeoutProtocol, tuple[float, bool]] = {}
        self._sweeping = False

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

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.done(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
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
        super().on_headers_complete()

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

    def head_timed_out(self, begun: bool) -> None:
        if self.transport.is_closing():
            return
        # A pipelined request still being answered: a 408 would land inside its response.
        answering = self.cycle is not None and not self.cycle.response_complete
        if begun and not answering:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a `seconds` bound on each request head."""
    namespace: dict[str, Any] = {"head_timeout": seconds, "_watches": weakref.WeakKeyDictionary()}
    return type("HeadTimeoutProtocol", (_HeadTimeoutProtocol,), namespace)
