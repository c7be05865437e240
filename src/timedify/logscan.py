"""Reading our JSON log lines fast, with or without a log shipper's prefix (SPEC O3, O4).

A line is one JSON object as `timedify.logs` writes it, optionally behind a prefix such as
`fly logs` prints: `2026-11-28T06:00:01Z app[683d5e0b] ams [info]{"time": ...}`. The JSON starts
at the first `{`.

`scan` is built for gigabytes: it reads big binary blocks, finds candidate lines with
`bytes.find` over the whole block (C speed, no per-line Python), and JSON-parses only those.
A line is a candidate when it has an error level, an `error_class`, or a 429/5xx status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson

BLOCK_SIZE = 8 * 1024 * 1024
# Every line worth counting contains this: `"level":"error"`, `"error_class":...` (H3 requires
# an error class on 429/5xx/db/webhook failures). One needle means one pass over the bytes at
# memchr-like speed; each extra needle would cost a whole extra pass.
NEEDLE = b'"error'
SINCE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
ERROR_LEVELS = frozenset({"error", "critical"})
WEBHOOK_EVENT_PREFIXES = ("webhook_", "event_", "handler_", "worker_")
CATEGORIES = ("webhook_errors", "db_errors", "http_429", "http_5xx", "errors")


def parse_line(line: bytes | str) -> dict[str, Any] | None:
    """The JSON object of one log line (prefix skipped), or None if it holds none."""
    data = line.encode() if isinstance(line, str) else line
    start = data.find(b"{")
    if start == -1:
        return None
    try:
        record = orjson.loads(data[start:])
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def record_time(record: dict[str, Any], line: bytes = b"") -> datetime | None:
    """The line's own `time`, else the shipper prefix's leading timestamp, else None."""
    value = record.get("time")
    if not isinstance(value, str) and line and not line.startswith(b"{"):
        value = line.split(b" ", 1)[0].decode(errors="replace")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def categories(record: dict[str, Any]) -> tuple[str, ...]:
    """Which alert counters one log record adds to (H3 error classes)."""
    level = record.get("level")
    error_class = record.get("error_class")
    status = record.get("status")
    is_error = level == "error" or level == "critical"
    found: tuple[str, ...] = ("errors",) if is_error else ()
    if error_class == "webhook" or (
        is_error and str(record.get("event", "")).startswith(WEBHOOK_EVENT_PREFIXES)
    ):
        found += ("webhook_errors",)
    if error_class == "db":
        found += ("db_errors",)
    if error_class == "http_429" or status == 429:
        found += ("http_429",)
    if error_class == "http_5xx" or (type(status) is int and 500 <= status <= 599):
        found += ("http_5xx",)
    return found


@dataclass
class ScanResult:
    """What a scan found: counters per category and per event name."""

    bytes: int = 0
    candidates: int = 0
    skipped_before_since: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)

    def count(self, category: str) -> int:
        return self.counts.get(category, 0)

    def top_events(self, limit: int = 5) -> list[tuple[str, int]]:
        return sorted(self.events.items(), key=lambda item: -item[1])[:limit]


def scan(stream: IO[bytes], since: datetime | None = None) -> ScanResult:
    """Scan a binary stream of log lines; only lines at or after `since` are counted."""
    result = ScanResult()
    since_key = since.astimezone(UTC).strftime(SINCE_FORMAT) if since else None
    rest = b""
    while chunk := stream.read(BLOCK_SIZE):
        result.bytes += len(chunk)
        last = chunk.rfind(b"\n")
        if last == -1:
            rest += chunk
            continue
        begin = 0
        if rest:
            # The line split across reads: joined and scanned on its own (no block copy).
            begin = chunk.find(b"\n") + 1
            _scan_range(rest + chunk[:begin], 0, len(rest) + begin, since_key, result)
        _scan_range(chunk, begin, last + 1, since_key, result)
        rest = chunk[last + 1 :]
    if rest:
        _scan_range(rest, 0, len(rest), since_key, result)
    return result


def _scan_range(block: bytes, lo: int, hi: int, since: str | None, result: ScanResult) -> None:
    """Count the candidate lines of `block[lo:hi]` (whole lines only).

    One loop with local names: it runs once per candidate line of a gigabyte-sized log.
    """
    find, rfind, loads = block.find, block.rfind, orjson.loads
    counts, events = result.counts, result.events
    at = find(NEEDLE, lo, hi)
    while at != -1:
        start = rfind(b"\n", lo, at) + 1 or lo
        end = find(b"\n", at, hi)
        if end == -1:
            end = hi
        at = find(NEEDLE, end, hi)
        brace = find(b"{", start, end)
        if brace == -1:
            continue
        try:
            record = loads(block[brace:end])
        except orjson.JSONDecodeError:
            continue
        if type(record) is not dict:
            continue
        if since is not None and _before(record, block[start:brace], since):
            result.skipped_before_since += 1
            continue
        found = categories(record)
        if not found:
            continue
        result.candidates += 1
        for category in found:
            counts[category] = counts.get(category, 0) + 1
        event = str(record.get("event", "?"))
        events[event] = events.get(event, 0) + 1


def _before(record: dict[str, Any], prefix: bytes, since: str) -> bool:
    """Whether the line is older than `since` (an ISO UTC timestamp, compared as text).

    Our timestamps are ISO 8601 in UTC, so text order is time order; anything else is parsed.
    """
    value = record.get("time")
    if type(value) is str and (value.endswith("Z") or value.endswith("+00:00")):
        text = value[:-1] if value.endswith("Z") else value[:-6]
        return (text if len(text) > 19 else text + ".000000") < since
    when = record_time(record, prefix + b"{")
    return when is not None and when.astimezone(UTC).strftime(SINCE_FORMAT) < since
