"""Structured logs: one JSON object per line on stdout, optionally also a file (SPEC H3).

Events have stable names (`webhook_accepted`, `webhook_rejected`, ...) and context fields
(`topic`, `shop`, `webhook_id`, `status`, `duration_ms`, `error_class`). A last processor drops
any field whose name says it holds a secret or personal data, so a careless call cannot leak one.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import IO, Any

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

# Field names that must never reach a log line, whatever the caller passes.
FORBIDDEN_FIELDS = frozenset(
    {
        "secret",
        "api_secret",
        "shopify_api_secret",
        "token",
        "access_token",
        "hmac",
        "signature",
        "authorization",
        "password",
        "email",
        "phone",
        "first_name",
        "last_name",
        "name",
        "address",
        "payload",
        "body",
        "customer",
        "dsn",
    }
)


def _drop_forbidden(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key in FORBIDDEN_FIELDS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


class _Tee:
    """Writes each line to stdout and, when configured, to a file (thread-safe, line-buffered)."""

    def __init__(self, streams: list[IO[bytes]]) -> None:
        self._streams = streams
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            for stream in self._streams:
                stream.write(data)
                stream.flush()

    def flush(self) -> None:
        pass


class _TeeLogger:
    def __init__(self, tee: _Tee) -> None:
        self._tee = tee

    def msg(self, message: bytes | str) -> None:
        data = message if isinstance(message, bytes) else message.encode()
        self._tee.write(data + b"\n")

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def configure_logging(
    level: str = "INFO",
    fmt: str = "json",
    file: Path | None = None,
    stream: IO[bytes] | None = None,
) -> None:
    """Set up structlog and route the standard library's logs (uvicorn, alembic) through it.

    `stream` defaults to stdout (the service); toolkit commands pass stderr so their log lines
    never mix with the data they print.
    """
    streams: list[IO[bytes]] = [stream or sys.stdout.buffer]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        streams.append(file.open("ab"))
    tee = _Tee(streams)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        _drop_forbidden,
    ]
    if fmt == "console":
        renderer: Any = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=lambda *_: _TeeLogger(tee),
        cache_logger_on_first_use=True,
    )
    stdlib_renderer = (
        renderer
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode())
    )
    handler = logging.StreamHandler(_TextStream(tee))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                stdlib_renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic.runtime.migration", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _TextStream:
    """The text face of the tee, for the standard library's handler."""

    def __init__(self, tee: _Tee) -> None:
        self._tee = tee

    def write(self, text: str) -> None:
        self._tee.write(text.encode())

    def flush(self) -> None:
        pass


def get_logger(name: str = "timedify") -> Any:
    return structlog.get_logger(name)
