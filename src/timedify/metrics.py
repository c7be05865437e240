"""Prometheus metrics of one service process (SPEC H4).

Each app gets its own registry (no import-time globals), so tests and several apps in one
process do not collide. Gauges that come from the database (backlog, dead letters) are filled
by the `/metrics` route from the same read-only queries `/health` uses.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from timedify.ingest import webhooks

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = LoopCounter(
            "timedify_webhooks_received",
            "Signed webhook requests received, by topic (one of ours, or 'other').",
            ("topic",),
            self.registry,
        )
        self.acked = LoopCounter(
            "timedify_webhooks_acked",
            "Webhooks answered 200 after a durable commit, by topic and outcome.",
            ("topic", "outcome"),
            self.registry,
        )
        self.rejected = Counter(
            "timedify_webhooks_rejected_total",
            "Webhook requests refused, by topic (one of ours, else 'other') and reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.ack_latency = LoopHistogram(
            "timedify_webhook_ack_seconds",
            "Time from request start to the acknowledgement being sent.",
            ACK_BUCKETS,
            self.registry,
        )
        self.commit_batch = Histogram(
            "timedify_ingest_commit_batch_size",
            "Webhooks committed together in one transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.processed = Counter(
            "timedify_events_processed_total",
            "Processing attempts, by topic and outcome (smoke-test events: synthetic).",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.processing_latency = Histogram(
            "timedify_event_processing_seconds",
            "Handler run time per attempt.",
            ["topic"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "timedify_webhook_backlog",
            "Events stored and not yet processed, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "timedify_dead_letters_unresolved",
            "Unresolved dead letters, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.admin_calls = Counter(
            "timedify_shopify_admin_calls_total",
            "Admin API requests, by operation and outcome (ok, http_429, http_5xx, ...).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.admin_latency = Histogram(
            "timedify_shopify_admin_call_seconds",
            "Admin API request duration (one HTTP request, retries apart).",
            ["operation"],
            registry=self.registry,
        )
        self.shop_repairs = Counter(
            "timedify_shops_sync_repairs_total",
            "Repairs made by `shops sync` (and the daily run), by kind.",
            ["kind"],
            registry=self.registry,
        )

    @staticmethod
    def topic_label(topic: str | None) -> str:
        """A bounded label: an unsigned request's topic header is arbitrary text."""
        return topic if topic in webhooks.HANDLED_TOPICS else "other"

    def render(self) -> bytes:
        return generate_latest(self.registry)


# The ingest hot path's metrics. prometheus_client's counters and histograms take a lock on
# every update (a histogram also walks its buckets in Python); an acknowledgement made three
# such updates, a tenth of the endpoint's own time. These are updated only by the event loop's
# thread, as plain numbers, and read whole when `/metrics` is scraped (from any thread: a dict
# or list is copied in one step under the GIL). The exposition is the same as the library's.


class LoopCounter(Collector):
    """A labelled counter updated from one thread (the event loop's) without a lock."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], registry: CollectorRegistry
    ) -> None:
        self._name = name  # without `_total`, as the library's families take it
        self._documentation = documentation
        self._labels = labels
        self._values: dict[tuple[str, ...], list[float]] = {}  # labels -> [value, created]
        registry.register(self)

    def inc(self, *labels: str) -> None:
        counted = self._values.get(labels)
        if counted is None:
            if len(labels) != len(self._labels):
                raise ValueError(f"{self._name} takes the labels {self._labels}")
            counted = self._values[labels] = [0.0, time.time()]
        counted[0] += 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for labels, (value, created) in list(self._values.items()):
            family.add_metric(labels, value, created=created)
        yield family


class LoopHistogram(Collector):
    """A histogram without labels updated from one thread (the event loop's) without a lock."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = list(buckets)
        self._names = [floatToGoString(b) for b in buckets]  # type: ignore[no-untyped-call]
        self._names.append("+Inf")
        self._counts = [0] * (len(buckets) + 1)  # per bucket, not cumulative; the last is +Inf
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        # `le` buckets: the first bound at or above the value.
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Iterator[Metric]:
        counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for name, count in zip(self._names, counts, strict=True):
            cumulative += count
            buckets.append((name, float(cumulative)))
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=buckets, sum_value=total
        )
