"""`logs-watch`: follow a log file or a stream, filter and format the JSON lines (SPEC O4)."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from timedify.toolkit.log_scan import categories, parse_line

# Shown first, in this order; the rest follow as key=value.
LEADING = ("time", "level", "event")
CONTEXT = ("topic", "shop", "webhook_id", "status", "reason", "error_class", "duration_ms")


@dataclass(frozen=True)
class Filters:
    """What to show; all given filters must match."""

    errors: bool = False
    webhooks: bool = False
    topic: str | None = None
    shop: str | None = None

    def matches(self, record: dict[str, Any] | None) -> bool:
        if record is None:
            return not (self.errors or self.webhooks or self.topic or self.shop)
        if self.errors and not (
            categories(record) or str(record.get("level")) in ("warning", "error", "critical")
        ):
            return False
        if self.webhooks and not (
            record.get("topic") or str(record.get("event", "")).startswith("webhook_")
        ):
            return False
        if self.topic and record.get("topic") != self.topic:
            return False
        return not (self.shop and record.get("shop") != self.shop)


def render(record: dict[str, Any]) -> tuple[str, str]:
    """(level, one readable line) for a log record."""
    level = str(record.get("level", "info")).lower()
    when = str(record.get("time", ""))[11:23] or "-"
    parts = [when, f"{level.upper():<8}", str(record.get("event", "?"))]
    # An absent value (JSON null) says nothing: no `note=None`.
    keys = [k for k in CONTEXT if record.get(k) is not None]
    keys += sorted(
        k for k in record if k not in CONTEXT and k not in LEADING and record[k] is not None
    )
    parts += [f"{k}={record[k]}" for k in keys]
    return level, " ".join(parts)


def follow(path: Path, from_start: bool, stop_at: float | None) -> Iterator[bytes]:
    """Lines appended to `path` (like `tail -F`: survives truncation and rotation)."""
    handle: IO[bytes] = path.open("rb")
    if not from_start:
        handle.seek(0, os.SEEK_END)
    inode = os.fstat(handle.fileno()).st_ino
    pending = b""
    try:
        while stop_at is None or time.monotonic() < stop_at:
            chunk = handle.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    yield pending.rstrip(b"\r\n")
                    pending = b""
                continue
            handle = _reopen_if_rotated(path, handle, inode)
            inode = os.fstat(handle.fileno()).st_ino
            time.sleep(0.1)
    finally:
        handle.close()


def _reopen_if_rotated(path: Path, handle: IO[bytes], inode: int) -> IO[bytes]:
    try:
        current = path.stat()
    except FileNotFoundError:
        return handle
    if current.st_ino != inode:
        handle.close()
        return path.open("rb")
    if current.st_size < handle.tell():
        handle.seek(0)  # truncated in place
    return handle


def stream_lines(stream: IO[bytes], stop_at: float | None) -> Iterator[bytes]:
    """Lines of a pipe until it ends or `stop_at` (monotonic time) passes."""
    fd = stream.fileno()
    pending = b""
    while stop_at is None or time.monotonic() < stop_at:
        wait = None if stop_at is None else max(0.0, stop_at - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


def parse(line: bytes) -> dict[str, Any] | None:
    return parse_line(line)
