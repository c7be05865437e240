"""How the service is served: uvicorn's options and `run` (what `timedify serve` starts).

`bench/` serves its raw-ASGI baseline with exactly these options, so the two are comparable.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from timedify.errors import ListenError, ServiceStartError
from timedify.ingest.slow_clients import head_timeout_protocol
from timedify.settings import Settings
from timedify.web.app import background_services, create_app


def uvicorn_options(
    header_read_timeout_seconds: float | None = None, retry_after_seconds: int | None = None
) -> dict[str, Any]:
    """How uvicorn serves the app; `bench/` serves its raw-ASGI baseline with exactly these.

    `header_read_timeout_seconds`: the bound on a request head (`slow_clients`);
    `retry_after_seconds`: the `Retry-After` of an overload answer; None is each setting's
    default. Connections and requests in flight are bounded by the protocol, not by uvicorn's
    `limit_concurrency`: that one counts idle connections and answers them plain text.
    """
    if header_read_timeout_seconds is None:
        header_read_timeout_seconds = Settings.model_fields["header_read_timeout_seconds"].default
    if retry_after_seconds is None:
        retry_after_seconds = Settings.model_fields["retry_after_seconds"].default
    return {
        "loop": "uvloop",
        "http": head_timeout_protocol(header_read_timeout_seconds, retry_after_seconds),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": None,
        "backlog": 4096,
    }


def ensure_can_listen(host: str, port: int) -> None:
    """Raise `ListenError` unless `host:port` can be bound, as uvicorn will bind it.

    Checked before anything starts: uvicorn binds only after the app's startup (worker,
    `service_started`) and then exits with its own code 3, which is ours for "database behind".
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror} (check HOST)") from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise ListenError(_listen_problem(host, port, exc)) from None


def _listen_problem(host: str, port: int, exc: OSError) -> str:
    hint = {
        "EADDRINUSE": "another process listens there (a second `timedify serve`?): stop it or "
        "choose another --port / PORT",
        "EADDRNOTAVAIL": "HOST is not an address of this machine (use 127.0.0.1 or 0.0.0.0)",
        "EACCES": "ports below 1024 need privileges: choose another --port / PORT",
    }.get(errno.errorcode.get(exc.errno or 0, ""), "check HOST and PORT")
    return f"cannot listen on {host}:{port}: {exc.strerror}; {hint}"


def run(settings: Settings) -> None:
    """Serve the app until a signal stops it (`timedify serve`)."""
    try:
        uvicorn.run(
            create_app(settings, background=background_services(settings)),
            host=settings.host,
            port=settings.port,
            **uvicorn_options(settings.header_read_timeout_seconds, settings.retry_after_seconds),
        )
    except SystemExit as exc:
        # uvicorn's "startup failed" is 3, our "database behind": the log lines above say why.
        if exc.code == STARTUP_FAILURE:
            raise ServiceStartError("the service did not start: its log lines say why") from None
        raise
