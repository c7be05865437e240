"""The JSON log lines written during a block, as the production configuration renders them."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from timedify.logs import configure_logging


class CapturedLogs:
    """The raw bytes written and the parsed lines."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    @property
    def raw(self) -> bytes:
        return self.buffer.getvalue()

    def lines(self, event: str | None = None) -> list[dict[str, Any]]:
        parsed = [orjson.loads(line) for line in self.raw.splitlines() if line.startswith(b"{")]
        return [line for line in parsed if event is None or line.get("event") == event]


@contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    """Log into a buffer for the block (loggers created inside it write there), then restore
    the session's configuration (JSON on stdout)."""
    captured = CapturedLogs()
    configure_logging("INFO", "json", stream=captured.buffer)
    try:
        yield captured
    finally:
        configure_logging("INFO", "json", stream=sys.stdout.buffer)
