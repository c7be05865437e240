"""The hot path's lock-free counter and histogram expose what prometheus_client's would (H4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from timedify.metrics import ACK_BUCKETS, LoopCounter, LoopHistogram

LABELS = st.tuples(
    st.sampled_from(["app/uninstalled", "shop/redact", "other"]),
    st.sampled_from(["new", "duplicate"]),
)
# Bounds themselves, values between and beyond them, and zero: `le` is "less than or equal".
VALUES = st.one_of(
    st.sampled_from([0.0, *ACK_BUCKETS]),
    st.floats(min_value=0, max_value=10, allow_nan=False),
)


def _without_created(text: bytes) -> list[str]:
    """The exposition's lines, less the `_created` samples (each takes its own clock reading)."""
    return [line for line in text.decode().splitlines() if "_created" not in line]


@given(st.lists(LABELS, max_size=50))
def test_counter_exposition_matches_the_library(increments: list[tuple[str, str]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = LoopCounter("demo_acked", "Acknowledged.", ("topic", "outcome"), ours)
    reference = Counter("demo_acked_total", "Acknowledged.", ["topic", "outcome"], registry=theirs)
    for labels in increments:
        counter.inc(*labels)
        reference.labels(*labels).inc()
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))


@given(st.lists(VALUES, max_size=50))
def test_histogram_exposition_matches_the_library(values: list[float]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    histogram = LoopHistogram("demo_seconds", "Latency.", ACK_BUCKETS, ours)
    reference = Histogram("demo_seconds", "Latency.", buckets=ACK_BUCKETS, registry=theirs)
    for value in values:
        histogram.observe(value)
        reference.observe(value)
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))


def test_counter_refuses_a_wrong_number_of_labels() -> None:
    counter = LoopCounter("demo_acked", "Acknowledged.", ("topic", "outcome"), CollectorRegistry())
    with pytest.raises(ValueError, match="topic"):
        counter.inc("app/uninstalled")
