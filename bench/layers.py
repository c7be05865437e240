"""The webhook endpoint with its durable commit, or also its log line and metrics, left out.

`python -m bench.layers LAYER PORT` serves the real `WebhookEndpoint` (signature check, header
and body validation, the row it would store, the response) with `uvicorn_options()`, like the
baseline and the service:

- `bare`: every row "committed" at once in memory, no metrics, logs at WARNING (no line per
  webhook): the endpoint's own request handling and nothing else;
- `observed`: as `bare`, plus the metrics and the JSON log line of every accepted webhook.

The `layers` scenario puts them between the baseline and the service in one run: what each
part of an acknowledgement costs where it runs, under load (docs/benchmarks.md). A diagnostic,
not a product mode: neither layer stores anything.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from timedify.ingest.endpoint import WebhookEndpoint
from timedify.logs import configure_logging
from timedify.metrics import Metrics
from timedify.settings import load_settings
from timedify.web.server import uvicorn_options

LAYERS = ("bare", "observed")


class InstantCommitter:
    """Stands in for `GroupCommitter`: every row is reported new at once, nothing is written."""

    def submit(self, row: dict[str, Any]) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.set_result(True)
        return future


class _Nothing:
    """A metric, or a metric's labelled child, that records nothing."""

    def labels(self, *_: str) -> _Nothing:
        return self

    def inc(self, *_: object) -> None:
        pass

    def observe(self, *_: object) -> None:
        pass


class NullMetrics(Metrics):
    """The endpoint's metrics, recording nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.received = self.acked = self.rejected = self.ack_latency = _Nothing()  # type: ignore[assignment]


def app(layer: str) -> Any:
    if layer not in LAYERS:
        raise SystemExit(f"unknown layer {layer!r}: one of {', '.join(LAYERS)}")
    settings = load_settings()
    observed = layer == "observed"
    configure_logging("INFO" if observed else "WARNING", "json")
    metrics = Metrics() if observed else NullMetrics()
    endpoint = WebhookEndpoint(settings, InstantCommitter(), metrics)  # type: ignore[arg-type]

    gc.collect()
    gc.freeze()  # as the service does after start-up

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await endpoint(scope, receive, send)

    return serve


def main() -> None:
    layer, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app(layer), host="127.0.0.1", port=port, lifespan="off", **uvicorn_options())


if __name__ == "__main__":
    main()
