"""O3/O4: reading our JSON log lines, plain and behind a `fly logs` prefix."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest

from timedify import logscan

FLY = b"2026-11-28T06:00:01Z app[683d5e0b] ams [info]"


def line(**fields: object) -> bytes:
    record = {"time": "2026-11-28T06:00:00.000000Z", "level": "info", **fields}
    return orjson.dumps(record)


def test_parse_line_skips_a_shipper_prefix() -> None:
    record = logscan.parse_line(FLY + line(event="webhook_accepted"))
    assert record is not None
    assert record["event"] == "webhook_accepted"
    assert logscan.parse_line(b"not json at all") is None
    assert logscan.parse_line(FLY + b"{broken") is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"event": "webhook_accepted", "status": 200}, ()),
        (
            {"event": "webhook_rejected", "level": "error", "status": 503, "error_class": "db"},
            ("errors", "webhook_errors", "db_errors", "http_5xx"),
        ),
        ({"event": "shopify_call", "level": "warning", "error_class": "http_429"}, ("http_429",)),
        ({"event": "shopify_call", "level": "warning", "error_class": "http_5xx"}, ("http_5xx",)),
        (
            {"event": "handler_failed", "level": "error", "error_class": "webhook"},
            ("errors", "webhook_errors"),
        ),
        ({"event": "service_crashed", "level": "critical"}, ("errors",)),
    ],
)
def test_categories_follow_the_error_classes(
    fields: dict[str, object], expected: tuple[str, ...]
) -> None:
    record = {"level": "info", **fields}
    assert set(logscan.categories(record)) == set(expected)


def test_scan_counts_plain_and_prefixed_lines_across_block_boundaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines split between two reads are still seen whole (a tiny block size forces splits)."""
    monkeypatch.setattr(logscan, "BLOCK_SIZE", 37)
    error = line(event="webhook_rejected", level="error", status=503, error_class="db")
    ok = line(event="webhook_accepted", status=200)
    data = b"\n".join([ok, error, FLY + error, ok, FLY + ok, b"garbage", error])  # no final \n
    result = logscan.scan(io.BytesIO(data))
    assert result.count("db_errors") == 3
    assert result.count("http_5xx") == 3
    assert result.count("http_429") == 0
    assert result.bytes == len(data)
    assert result.top_events() == [("webhook_rejected", 3)]


def test_scan_since_uses_each_lines_time() -> None:
    old = orjson.dumps(
        {
            "time": "2026-11-27T05:59:59.999999Z",
            "level": "error",
            "event": "webhook_x",
            "error_class": "db",
        }
    )
    new = orjson.dumps(
        {
            "time": "2026-11-28T06:00:00.000001Z",
            "level": "error",
            "event": "webhook_x",
            "error_class": "db",
        }
    )
    offset = orjson.dumps(
        {
            "time": "2026-11-28T08:00:00+02:00",
            "level": "error",
            "event": "webhook_x",
            "error_class": "db",
        }
    )
    since = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    result = logscan.scan(
        io.BytesIO(b"\n".join([old, FLY + old, new, FLY + new, offset]) + b"\n"), since
    )
    assert result.count("db_errors") == 3
    assert result.skipped_before_since == 2


def test_record_time_falls_back_to_the_prefix() -> None:
    record = {"level": "error"}
    assert logscan.record_time(record, FLY + b"{}") == datetime(2026, 11, 28, 6, 0, 1, tzinfo=UTC)
    assert logscan.record_time(record, b"{}") is None
