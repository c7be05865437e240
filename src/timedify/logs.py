"""Structured logs: one JSON object per line on stdout, optionally also a file (SPEC H3).

Events have stable names (`webhook_accepted`, `webhook_rejected`, ...) and context fields
(`topic`, `shop`, `webhook_id`, `status`, `duration_ms`, `error_class`). A last processor drops
any field whose name says it holds a secret or personal data, so a careless call cannot leak one,
and masks tokens inside text (a URL's `id_token=`, a JWT quoted in a message).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import re
import sys
import threading
import time
from datetime import UTC, datetime
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
        "refresh_token",
        "id_token",
        "session_token",
        "subject_token",
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


# Header values are written by whoever sent the request (and, for a signed one, anyone holding
# the secret): only a value shaped like an identifier is logged as it is, so an e-mail address,
# a name or free text put in a header never reaches a log line.
_IDENTIFIER = re.compile(r"[A-Za-z0-9._:/-]{1,255}")
NOT_AN_IDENTIFIER = "[not an identifier]"


def is_identifier(value: str) -> bool:
    """Whether `value` has the shape of an identifier (an e-mail or a `+` phone has not)."""
    return _IDENTIFIER.fullmatch(value) is not None


def pseudonym(value: str | None) -> str | None:
    """`value` to keep in the database: itself if it has the shape of an identifier, else a
    stable stand-in that has (the same value always gets the same one, so duplicates are still
    recognised). An e-mail or a phone sent as a webhook or event id is never stored."""
    if value is None or is_identifier(value):
        return value
    return "redacted:" + hashlib.sha256(value.encode()).hexdigest()[:20]


def identifier(value: str | None) -> str | None:
    """`value` for a log line if it has the shape of an identifier, else a marker."""
    if value is None or is_identifier(value):
        return value
    return NOT_AN_IDENTIFIER


# A token inside free text: a query parameter (`?id_token=...` in a logged URL) or anything
# shaped like a JWT (a session token quoted in an error message).
_QUERY_TOKEN = re.compile(r"((?:^|[?&;\s])[a-z_]*token=)[^&\s\"'#]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
REDACTED = "[redacted]"


def scrub_text(text: str) -> str:
    """`text` with query-string tokens and JWT-shaped strings replaced by a marker."""
    if "token=" in text:
        text = _QUERY_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


def _scrub_tokens(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str) and ("token=" in value or "eyJ" in value):
            event_dict[key] = scrub_text(value)
    return event_dict


def _drop_forbidden(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key in FORBIDDEN_FIELDS.intersection(event_dict):
        event_dict[key] = REDACTED
    return event_dict


class _Tee:
    """Writes each line to stdout and, when configured, to a file (thread-safe).

    Off the event loop a line is written and flushed at once. On the event loop - one line per
    webhook under load - lines are collected and written with one system call per loop
    iteration, at the end of the iteration that logged them: a write and its GIL hand-off per
    line was the largest single cost of an acknowledgement after the database.
    """

    def __init__(self, streams: list[IO[bytes]]) -> None:
        self._streams = streams
        self._lock = threading.Lock()  # held only to append or take the pending lines
        self._write_lock = threading.Lock()
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        loop = _running_loop()
        if loop is None:
            self._write([data])
            return
        with self._lock:
            self._pending.append(data)
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the lines collected on the event loop (also at exit)."""
        with self._lock:
            lines, self._pending, self._scheduled = self._pending, [], False
        if lines:
            self._write(lines)

    def _write(self, lines: list[bytes]) -> None:
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        with self._write_lock:
            for stream in self._streams:
                stream.write(data)
                stream.flush()


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
    atexit.register(tee.flush)
    global _hot_sink
    _hot_sink = tee if fmt == "json" and logging.getLevelName(level) <= logging.INFO else None
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        _drop_forbidden,
        _scrub_tokens,
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
        pass  # the tee writes each line (or each loop iteration's lines) itself


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def get_logger(name: str = "timedify") -> Any:
    return structlog.get_logger(name)


_second: tuple[int, str] = (-1, "")


def _iso_now() -> str:
    """The time as structlog's ISO `TimeStamper` writes it (UTC, `Z`), always with microseconds.

    The date-and-seconds part is formatted once per second: a full `isoformat()` per line was a
    tenth of the line's cost.
    """
    global _second
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)  # integers: no float rounding
    if _second[0] != second:
        _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{_second[1]}{micro:06d}Z"


# Where `HotLogger` writes its JSON lines; None sends them through structlog (console format,
# a level above INFO, or logging not configured at all).
_hot_sink: _Tee | None = None


class HotLogger:
    """`info()` for the line written once per accepted webhook, at a fraction of the cost.

    It renders exactly what the structlog chain above renders for JSON (the fields, then
    `event`, `level`, `time`; contextvars merged; forbidden fields redacted) but in one step
    instead of a processor chain. Tokens inside text are not looked for: the webhook line
    carries identifiers, never a URL or a message. Any other format or level goes through
    structlog unchanged.
    """

    def __init__(self, name: str) -> None:
        self._log = structlog.get_logger(name)

    def info(self, event: str, **fields: Any) -> None:
        sink = _hot_sink
        if sink is None:
            self._log.info(event, **fields)
            return
        fields["event"] = event
        structlog.contextvars.merge_contextvars(None, "info", fields)
        fields["level"] = "info"
        fields["time"] = _iso_now()
        if not FORBIDDEN_FIELDS.isdisjoint(fields):
            _drop_forbidden(None, "info", fields)
        sink.write(orjson.dumps(fields) + b"\n")


class RepeatedLines:
    """One line per `interval` seconds for a failure that repeats, carrying how many it stands for.

    A failure hit by every request (a full disk, a database gone) wrote thousands of identical
    lines a second. The first occurrence is logged at once; those within the next `interval`
    are only counted, and the next line written has `occurrences`: how many times it happened
    since the previous line, itself included (`alerting-check` adds them up). `flush()` writes
    what is still counted (the failure has stopped). Thread-safe.
    """

    def __init__(self, logger: Any, interval: float = 10.0, level: str = "error") -> None:
        self._logger, self._level = logger, level
        self._interval = interval
        self._lock = threading.Lock()
        # (event, fields) -> [when its last line was written, occurrences counted since]
        self._counted: dict[tuple[str, bytes], list[float]] = {}

    def log(self, event: str, **fields: Any) -> None:
        """Log (or count) `event`; the same event with the same fields is a repetition."""
        key = (event, orjson.dumps(fields, default=str, option=orjson.OPT_SORT_KEYS))
        now = time.monotonic()
        with self._lock:
            seen = self._counted.get(key)
            if seen is not None and now - seen[0] < self._interval:
                seen[1] += 1
                return
            occurrences = 1 + (int(seen[1]) if seen is not None else 0)
            self._counted[key] = [now, 0]
        getattr(self._logger, self._level)(event, occurrences=occurrences, **fields)

    def flush(self) -> None:
        """Write a line for each failure counted since its last line (it stopped repeating)."""
        with self._lock:
            pending = [(key, int(seen[1])) for key, seen in self._counted.items() if seen[1]]
            self._counted = {}
        for (event, fields), count in pending:
            getattr(self._logger, self._level)(event, occurrences=count, **orjson.loads(fields))
