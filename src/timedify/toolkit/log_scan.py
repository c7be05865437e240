"""Reading our JSON log lines fast, with or without a log shipper's prefix (SPEC O3, O4).

A line is one JSON object as `timedify.logs` writes it, optionally behind a prefix such as
`fly logs` prints: `2026-11-28T06:00:01Z app[683d5e0b] ams [info]{"time": ...}`. The JSON starts
at the first `{`.

`scan` is built for gigabytes: it reads cache-sized blocks into one reused buffer, finds
candidate lines with one substring search over the whole block (glibc's `memmem` where there
is one: ~3x CPython's `bytes.find` for this needle), and JSON-parses only those. A line is a
candidate when it has an error level, an `error_class`, or a 429/5xx status.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson

# Small enough that a block is still in the CPU cache when it is searched right after the copy
# from the page cache; big enough that per-block Python costs nothing.
BLOCK_SIZE = 1024 * 1024
# Every line worth counting contains this: `"level":"error"`, `"error_class":...` (H3 requires
# an error class on 429/5xx/db/webhook failures). One needle means one pass over the bytes at
# memchr-like speed; each extra needle would cost a whole extra pass.
NEEDLE = b'"error'
SINCE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
ERROR_LEVELS = frozenset({"error", "critical"})
WEBHOOK_EVENT_PREFIXES = ("webhook_", "event_", "handler_", "worker_")
CATEGORIES = ("webhook_errors", "db_errors", "http_429", "http_5xx", "errors")
# Without memmem: `bytes.find` over windows this small takes CPython's Horspool-style search,
# faster for a short needle than the two-way search it switches to on long ranges.
_WINDOW = 28_000

Finder = Callable[[int, int], int]


def _load_memmem() -> Any:
    try:
        memmem = ctypes.CDLL(None).memmem
    except (OSError, AttributeError):  # no C library to load, or one without memmem
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return memmem


MEMMEM = _load_memmem()


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
    since_key = to_since_key(since) if since else None
    buffer = bytearray(BLOCK_SIZE)
    find = finder(buffer)
    kept = 0  # the unfinished last line of the previous block, moved to the buffer's start
    while True:
        if kept == len(buffer):  # one line longer than the buffer: make room for the rest
            buffer = buffer + bytes(len(buffer))  # a new object: the old one is pinned
            find = finder(buffer)
        read = _read_into(stream, buffer, kept)
        if not read:
            break
        result.bytes += read
        end = kept + read
        last = buffer.rfind(b"\n", kept, end)
        if last == -1:
            kept = end
            continue
        _scan_range(buffer, find, last + 1, since_key, result)
        kept = end - last - 1
        buffer[:kept] = buffer[last + 1 : end]
    if kept:
        _scan_range(buffer, find, kept, since_key, result)
    return result


def to_since_key(since: datetime) -> str:
    """`since` as the text `before` compares our UTC timestamps with."""
    return since.astimezone(UTC).strftime(SINCE_FORMAT)


def blocks(stream: IO[bytes]) -> Iterator[bytearray]:
    """The stream in blocks of whole lines (the last one may lack its newline).

    For readers that look at every line (`logs-report`): one `split` per block, no per-line
    read. The same reused buffer and `readinto` as `scan`.
    """
    buffer = bytearray(BLOCK_SIZE)
    kept = 0
    while True:
        if kept == len(buffer):  # one line longer than the buffer
            buffer += bytes(len(buffer))
        read = _read_into(stream, buffer, kept)
        if not read:
            break
        end = kept + read
        last = buffer.rfind(b"\n", kept, end)
        if last == -1:
            kept = end
            continue
        yield buffer[: last + 1]  # a copy: the buffer is refilled while the caller reads
        kept = end - last - 1
        buffer[:kept] = buffer[last + 1 : end]
    if kept:
        yield buffer[:kept]


def _read_into(stream: IO[bytes], buffer: bytearray, offset: int) -> int:
    """Fill `buffer` after `offset` from `stream` without a new bytes object per block."""
    readinto = getattr(stream, "readinto", None)
    with memoryview(buffer) as view, view[offset:] as free:
        if readinto is not None:
            return int(readinto(free) or 0)
        data = stream.read(len(free))
        free[: len(data)] = data
        return len(data)


def finder(buffer: bytearray) -> Finder:
    """`find(lo, hi)`: the first NEEDLE in `buffer[lo:hi]`, or -1 (memmem when available)."""
    if MEMMEM is None:
        return _window_finder(buffer)
    memmem, needle, size = MEMMEM, NEEDLE, len(NEEDLE)
    # Holds the buffer's export: the address stays valid (a bytearray with an export cannot move).
    pinned = ctypes.c_char.from_buffer(buffer)
    base = ctypes.addressof(pinned)

    def find(lo: int, hi: int) -> int:
        if hi - lo < size:
            return -1
        hit: int | None = memmem(base + lo, hi - lo, needle, size)
        return -1 if hit is None else hit - base

    find.pinned = pinned  # type: ignore[attr-defined]
    return find


def _window_finder(buffer: bytearray) -> Finder:
    search, overlap = buffer.find, len(NEEDLE) - 1

    def find(lo: int, hi: int) -> int:
        while lo < hi:
            stop = min(lo + _WINDOW, hi)
            # Windows overlap by len(NEEDLE) - 1 so a needle across a window edge is seen.
            at = search(NEEDLE, lo, min(stop + overlap, hi))
            if at != -1:
                return at
            lo = stop
        return -1

    return find


def _scan_range(
    block: bytearray, find_needle: Finder, hi: int, since: str | None, result: ScanResult
) -> None:
    """Count the candidate lines of `block[:hi]` (whole lines only).

    One loop with local names: it runs once per candidate line of a gigabyte-sized log.
    """
    find, rfind, loads = block.find, block.rfind, orjson.loads
    counts, events = result.counts, result.events
    at = find_needle(0, hi)
    while at != -1:
        start = rfind(b"\n", 0, at) + 1
        end = find(b"\n", at, hi)
        if end == -1:
            end = hi
        at = find_needle(end, hi)
        brace = find(b"{", start, end)
        if brace == -1:
            continue
        try:
            record = loads(block[brace:end])
        except orjson.JSONDecodeError:
            continue
        if type(record) is not dict:
            continue
        if since is not None and before(record, bytes(block[start:brace]), since):
            result.skipped_before_since += 1
            continue
        found = categories(record)
        if not found:
            continue
        result.candidates += 1
        weight = occurrences(record)
        for category in found:
            counts[category] = counts.get(category, 0) + weight
        event = str(record.get("event", "?"))
        events[event] = events.get(event, 0) + weight


def occurrences(record: dict[str, Any]) -> int:
    """How many failures one line stands for: a repeated one is logged once with its count."""
    value = record.get("occurrences")
    return value if type(value) is int and value > 0 else 1


def before(record: dict[str, Any], prefix: bytes, since: str) -> bool:
    """Whether the line is older than `since` (`to_since_key`'s text; `prefix`: the shipper's).

    Our timestamps are ISO 8601 in UTC, so text order is time order; anything else is parsed.
    """
    value = record.get("time")
    if type(value) is str and (value.endswith("Z") or value.endswith("+00:00")):
        text = value[:-1] if value.endswith("Z") else value[:-6]
        return (text if len(text) > 19 else text + ".000000") < since
    when = record_time(record, prefix + b"{")
    return when is not None and when.astimezone(UTC).strftime(SINCE_FORMAT) < since
