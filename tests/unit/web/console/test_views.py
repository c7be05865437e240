"""What console pages show of stored values: masked payloads, page cursors, ages."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from timedify.errors import TimedifyError
from timedify.processing.redaction import REDACTED
from timedify.testing import sample_payload
from timedify.web.console import views


def test_customer_fields_are_masked_and_the_shape_kept() -> None:
    payload = sample_payload("customers/redact", "demo.myshopify.com")
    payload["note"] = "write to john@example.com please"
    payload["customer_id"] = 191167
    text, keys, size = views.masked(orjson.dumps(payload))
    shown = orjson.loads(text)
    assert shown["customer"] == {"id": REDACTED, "email": REDACTED, "phone": REDACTED}
    assert shown["customer_id"] == REDACTED
    assert shown["note"] == f"write to {REDACTED} please"
    assert shown["orders_to_redact"] == payload["orders_to_redact"]
    assert keys == sorted(payload)
    assert size == len(orjson.dumps(payload))
    assert "john@example.com" not in text
    assert "191167" not in text


def test_personal_keys_are_masked_anywhere() -> None:
    nested = {
        "billing": {"first_name": "Ann", "zip": "12345", "country": "FR"},
        "list": [{"name": "x"}],
    }
    shown = orjson.loads(views.masked(orjson.dumps(nested))[0])
    assert shown == {
        "billing": {"first_name": REDACTED, "zip": REDACTED, "country": "FR"},
        "list": [{"name": REDACTED}],
    }


def test_an_unreadable_payload_shows_as_empty() -> None:
    assert views.masked(b"not json") == ("{}", [], 8)


def test_cursor_round_trip_and_malformed_ones() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert views.decode_cursor(views.encode_cursor((at, 42))) == (at, 42)
    assert views.decode_cursor(None) is None
    for bad in ["!!!", "bm90IGEgY3Vyc29y", views.encode_cursor((at, 1))[:-4]]:
        with pytest.raises(TimedifyError):
            views.decode_cursor(bad)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5 s"), (90, "90 s"), (600, "10 min"), (7200, "2.0 h"), (172800, "2.0 d")],
)
def test_ages(seconds: float, shown: str) -> None:
    assert views.FILTERS["age"](seconds) == shown


def test_chart_cache_reads_only_unsettled_buckets() -> None:
    """A bucket ended a minute ago is kept; the next read starts after it."""
    cache = views.ChartCache()
    start, bucket = 0, 300
    assert cache.since(start) == 0
    first = {"received": {0: 1, 300: 2, 600: 3}}
    assert cache.merge(first, start, 0, now=700, bucket=bucket) == first
    assert cache.since(start) == 600  # 700 - 60 s settles the buckets before 600
    later = cache.merge({"received": {600: 5, 900: 1}}, start, 600, now=1000, bucket=bucket)
    assert later == {"received": {0: 1, 300: 2, 600: 5, 900: 1}}
    moved = cache.merge({"received": {900: 2}}, 300, cache.since(300), now=1000, bucket=bucket)
    assert moved == {"received": {300: 2, 600: 5, 900: 2}}  # the window moved past 0
