"""A bound on the request head: connections that do not send one in time are closed.

uvicorn bounds the wait between two requests of a connection (`timeout_keep_alive`) and the
endpoint bounds the body (`BODY_READ_TIMEOUT_SECONDS`), but nothing bounds a new connection that
never sends a byte or a request head that never completes. Each holds one of uvicorn's
`limit_concurrency` slots, and enough of them (a slow-loris attack, a broken proxy) turn every
webhook away with `503`. `head_timeout_protocol()` is uvicorn's httptools protocol plus that
bound: a head begun and not finished within it gets `408` and the connection is closed; a
connection that sent nothing is closed. Once the bound is passed, a connection is closed by the next
sweep, a fraction of the bound later; the ack path pays two dictionary operations per request.
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
        watch = self._watches.get(self.loop)
        if watch is None:
            watch = self._watches[self.loop] = _HeadWatch(self.loop, self.head_timeout)
        self._watch = watch
        watch.wait(self, False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.done(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._watch.wait(self, True)

    def on_headers_complete(self) -> None:
        self._watch.done(self)
        super().on_headers_complete()

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
