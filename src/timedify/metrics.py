"""Prometheus metrics of one service process (SPEC H4).

Each app gets its own registry (no import-time globals), so tests and several apps in one
process do not collide. Gauges that come from the database (backlog, dead letters) are filled
by the `/metrics` route from the same read-only queries `/health` uses.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from timedify import shopify

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "timedify_webhooks_received_total",
            "Signed webhook requests received, by topic (one of ours, or 'other').",
            ["topic"],
            registry=self.registry,
        )
        self.acked = Counter(
            "timedify_webhooks_acked_total",
            "Webhooks answered 200 after a durable commit, by topic and outcome.",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "timedify_webhooks_rejected_total",
            "Webhook requests refused, by topic (one of ours, else 'other') and reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "timedify_webhook_ack_seconds",
            "Time from request start to the acknowledgement being sent.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.commit_batch = Histogram(
            "timedify_ingest_commit_batch_size",
            "Webhooks committed together in one transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.processed = Counter(
            "timedify_events_processed_total",
            "Processing attempts, by topic and outcome.",
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

    @staticmethod
    def topic_label(topic: str | None) -> str:
        """A bounded label: an unsigned request's topic header is arbitrary text."""
        return topic if topic in shopify.TOPICS else "other"

    def render(self) -> bytes:
        return generate_latest(self.registry)
