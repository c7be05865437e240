"""O3/O4: reading our JSON log lines, plain and behind a `fly logs` prefix."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from unittest.mock import patch

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timedify.toolkit import log_scan

FLY = b"2026-11-28T06:00:01Z app[683d5e0b] ams [info]"


def line(**fields: object) -> bytes:
    record = {"time": "2026-11-28T06:00:00.000000Z", "level": "info", **fields}
    return orjson.dumps(record)


def test_parse_line_skips_a_shipper_prefix() -> None:
    record = log_scan.parse_line(FLY + line(event="webhook_accepted"))
    assert record is not None
    assert record["event"] == "webhook_accepted"
    assert log_scan.parse_line(b"not json at all") is None
    assert log_scan.parse_line(FLY + b"{broken") is None


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
    assert set(log_scan.categories(record)) == set(expected)


def test_scan_counts_plain_and_prefixed_lines_across_block_boundaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines split between two reads are still seen whole (a tiny block size forces splits)."""
    monkeypatch.setattr(log_scan, "BLOCK_SIZE", 37)
    error = line(event="webhook_rejected", level="error", status=503, error_class="db")
    ok = line(event="webhook_accepted", status=200)
    data = b"\n".join([ok, error, FLY + error, ok, FLY + ok, b"garbage", error])  # no final \n
    result = log_scan.scan(io.BytesIO(data))
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
    result = log_scan.scan(
        io.BytesIO(b"\n".join([old, FLY + old, new, FLY + new, offset]) + b"\n"), since
    )
    assert result.count("db_errors") == 3
    assert result.skipped_before_since == 2


def test_record_time_falls_back_to_the_prefix() -> None:
    record = {"level": "error"}
    assert log_scan.record_time(record, FLY + b"{}") == datetime(2026, 11, 28, 6, 0, 1, tzinfo=UTC)
    assert log_scan.record_time(record, b"{}") is None


def reference_scan(data: bytes, since: datetime | None) -> log_scan.ScanResult:
    """The simple per-line reading that `scan`'s block search must equal."""
    result = log_scan.ScanResult(bytes=len(data))
    since_key = since.astimezone(UTC).strftime(log_scan.SINCE_FORMAT) if since else None
    for text in data.split(b"\n"):
        if log_scan.NEEDLE not in text or (record := log_scan.parse_line(text)) is None:
            continue
        if since_key and log_scan.before(record, text[: text.find(b"{")], since_key):
            result.skipped_before_since += 1
            continue
        if found := log_scan.categories(record):
            result.candidates += 1
            for category in found:
                result.counts[category] = result.counts.get(category, 0) + 1
            event = str(record.get("event", "?"))
            result.events[event] = result.events.get(event, 0) + 1
    return result


records = st.fixed_dictionaries(
    {
        "time": st.sampled_from(
            ["2026-11-28T05:59:59.999999Z", "2026-11-28T06:00:00Z", "2026-11-28T08:00:01+02:00"]
        ),
        "level": st.sampled_from(["info", "warning", "error", "critical"]),
        "event": st.sampled_from(["webhook_accepted", "handler_failed", "db_down", "error"]),
    },
    optional={
        "error_class": st.sampled_from(["db", "webhook", "http_429", "http_5xx", "other"]),
        "status": st.sampled_from([200, 401, 429, 503, "503"]),
        "error": st.text(max_size=12),
    },
)
log_lines = st.one_of(
    records.map(orjson.dumps),
    records.map(lambda r: FLY + orjson.dumps(r)),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.just(b'{"error": broken'),
    st.just(b'"error" [1, 2]'),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(log_lines, max_size=40),
    final_newline=st.booleans(),
    block_size=st.integers(min_value=1, max_value=400),
    window=st.integers(min_value=1, max_value=64),
    use_memmem=st.booleans(),
    since=st.sampled_from([None, datetime(2026, 11, 28, 6, 0, tzinfo=UTC)]),
)
def test_block_scan_equals_the_per_line_reading(
    lines: list[bytes],
    final_newline: bool,
    block_size: int,
    window: int,
    use_memmem: bool,
    since: datetime | None,
) -> None:
    """Any block size (lines split anywhere, lines longer than a block), either search."""
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    memmem = log_scan.MEMMEM if use_memmem else None
    with (
        patch.object(log_scan, "BLOCK_SIZE", block_size),
        patch.object(log_scan, "_WINDOW", window),
        patch.object(log_scan, "MEMMEM", memmem),
    ):
        result = log_scan.scan(io.BytesIO(data), since)
    expected = reference_scan(data, since)
    assert result == expected


def test_the_fast_search_is_there_on_linux() -> None:
    """The container and CI run on glibc: the benchmarked path is the one in production."""
    if sys.platform.startswith("linux"):
        assert log_scan.MEMMEM is not None


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(log_lines, max_size=30),
    final_newline=st.booleans(),
    block_size=st.integers(min_value=1, max_value=300),
)
def test_blocks_are_the_stream_in_whole_lines(
    lines: list[bytes], final_newline: bool, block_size: int
) -> None:
    """Joined, the blocks are the stream; each but the last ends a line (lines longer than a
    block included)."""
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    with patch.object(log_scan, "BLOCK_SIZE", block_size):
        blocks = [bytes(block) for block in log_scan.blocks(io.BytesIO(data))]
    assert b"".join(blocks) == data
    assert all(block.endswith(b"\n") for block in blocks[:-1])
    assert all(blocks)
