"""The per-webhook log line (H3): the same JSON shape as every other line, redaction included."""

from __future__ import annotations

import io
import sys
from typing import Any

import orjson
import pytest

from tests.support.logcapture import captured_logs
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


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJkZXN0IjoiaHR0cHM6Ly94In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "text",
    [
        f"GET /app?shop=x.myshopify.com&id_token={JWT}&locale=de",
        f"/app?id_token={JWT}",
        f"token rejected: {JWT}",
        f"Bearer {JWT}",
        "/x?session_token=abc.def.ghi&a=1",
        "access_token=shpat_123 refresh_token=shprt_456",
    ],
)
def test_tokens_inside_text_are_masked(text: str) -> None:
    scrubbed = logs.scrub_text(text)
    assert JWT not in scrubbed
    assert "abc.def.ghi" not in scrubbed
    assert "shpat_123" not in scrubbed
    assert "shprt_456" not in scrubbed
    assert "[redacted]" in scrubbed


def test_text_without_tokens_is_left_alone() -> None:
    text = "GET /app?shop=x.myshopify.com&embedded=1&tokens=3"
    assert logs.scrub_text(text) == text


def test_a_logged_url_or_message_never_carries_a_session_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S2: neither structlog fields nor standard-library messages (uvicorn's) leak an id_token."""
    import logging

    out = _Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    logs.configure_logging("INFO", "json")
    logs.get_logger("t").info("request", url=f"/app?id_token={JWT}", id_token=JWT, note=JWT)
    logging.getLogger("uvicorn.error").warning("GET /app?id_token=%s 400", JWT)
    assert JWT.encode() not in out.buffer.getvalue()
    first, second = _lines(out)
    assert first["url"] == "/app?id_token=[redacted]"
    assert first["id_token"] == "[redacted]"
    assert "[redacted]" in second["event"]


def test_a_repeated_failure_is_written_once_then_counted_until_flushed() -> None:
    """The first occurrence is written at once; those within the interval only counted; the
    flush writes how many, and a different failure is a line of its own."""
    with captured_logs() as captured:
        repeated = logs.RepeatedLines(logs.get_logger("t"), interval=3600)
        for _ in range(5):
            repeated.log("webhook_store_failed", error_type="OperationalError")
        repeated.log("webhook_store_failed", error_type="DiskFull")
        repeated.flush()
        repeated.flush()  # nothing counted any more: nothing written
    lines = [(line["error_type"], line["occurrences"]) for line in captured.lines()]
    assert lines == [("OperationalError", 1), ("DiskFull", 1), ("OperationalError", 4)]


@pytest.mark.parametrize("value", ["jane@example.com", "+15556251199", "Jane Roe"])
def test_what_is_not_identifier_shaped_is_kept_as_a_stable_stand_in(value: str) -> None:
    kept = logs.pseudonym(value)
    assert kept is not None
    assert kept == logs.pseudonym(value)
    assert kept.startswith("redacted:")
    assert logs.identifier(kept) == kept
    assert logs.pseudonym("4b1e5a0c-2f6d-4d7e-9b8a-1c2d3e4f5a6b") == (
        "4b1e5a0c-2f6d-4d7e-9b8a-1c2d3e4f5a6b"
    )
