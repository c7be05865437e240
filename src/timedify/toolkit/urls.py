"""The service URL the HTTP commands take, and why a request to it failed, in words.

`send-webhook`, `health-check`, `smoke`, `status` and `alerting-check` share these, so a URL
without `http://` and a refused connection read the same everywhere.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from timedify.errors import UsageError

if TYPE_CHECKING:
    import httpx

# httpx is imported inside `reason`: `alerting-check` on a log file starts without it.


def base_url(text: str, option: str = "--url") -> str:
    """`text` without its trailing slash, or `UsageError` when it is not an http(s) URL.

    httpx's own answer to `127.0.0.1:8000` is `UnsupportedProtocol`, which says nothing of the
    missing `http://`.
    """
    value = text.strip().rstrip("/")
    scheme, found, rest = value.partition("://")
    if not found:
        raise UsageError(f"{option} {text} has no scheme: add http:// or https:// (http://{value})")
    if scheme.lower() not in ("http", "https") or not rest:
        raise UsageError(f"{option} {text} is not an http:// or https:// URL")
    return value


def reason(exc: httpx.HTTPError) -> str:
    """Why a request failed, as an operator acts on it: refused, unknown host, TLS, timeout."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out while connecting (host down or port filtered?)"
    if isinstance(exc, httpx.TimeoutException):
        return "connected, but no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return _connect_reason(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without an HTTP answer (not this service?)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _connect_reason(exc: httpx.ConnectError) -> str:
    causes = _chain(exc)
    text = str(exc)
    if any(isinstance(c, ssl.SSLError) for c in causes) or "SSL" in text:
        return f"TLS handshake failed ({text or 'no detail'}): is it https on an http port?"
    if any(isinstance(c, socket.gaierror) for c in causes) or "name" in text.lower():
        return "unknown host (the name does not resolve)"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text.lower():
        return "connection refused (nothing listens on that port: is the service running?)"
    return f"cannot connect ({text or type(exc).__name__})"


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception it was raised from or during, innermost last."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
