"""The per-webhook log line (H3): the same JSON shape as every other line, redaction included."""

from __future__ import annotations

import io
import sys
from typing import Any

import orjson
import pytest

from timedify import logs


class _Stdout:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()


def _lines(out: _Stdout) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.buffer.getvalue().splitlines()]


def test_hot_logger_writes_what_structlog_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    logs.configure_logging("INFO", "json")
    logs.get_logger("t").info("webhook_accepted", topic="app/uninstalled", status=200)
    logs.HotLogger("t").info("webhook_accepted", topic="app/uninstalled", status=200)
    plain, hot = _lines(out)
    assert set(plain) == set(hot) == {"topic", "status", "event", "level", "time"}
    assert hot["event"] == "webhook_accepted"
    assert hot["level"] == "info"
    assert hot["time"].endswith("Z")


def test_hot_logger_redacts_forbidden_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    logs.configure_logging("INFO", "json")
    logs.HotLogger("t").info("webhook_accepted", email="john@example.com", topic="x/y")
    [line] = _lines(out)
    assert line["email"] == "[redacted]"
    assert b"john@example.com" not in out.buffer.getvalue()


def test_hot_logger_respects_the_level(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    logs.configure_logging("WARNING", "json")
    logs.HotLogger("t").info("webhook_accepted", topic="x/y")
    assert out.buffer.getvalue() == b""


def test_lines_logged_on_the_event_loop_are_written_by_the_end_of_the_iteration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    out = _Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    logs.configure_logging("INFO", "json")

    async def scenario() -> int:
        for i in range(3):
            logs.HotLogger("t").info("webhook_accepted", n=i)
        before = len(out.buffer.getvalue().splitlines())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return before

    assert asyncio.run(scenario()) == 0, "batched until the loop iteration ends"
    assert [line["n"] for line in _lines(out)] == [0, 1, 2]
