"""The webhook endpoint's own cost, in process: CPU time or instructions per request.

`python -m bench.endpoint` drives the real `WebhookEndpoint` (JSON logs at INFO to /dev/null,
real metrics, the commit replaced by `layers.InstantCommitter`) with signed requests in rounds
of 64 concurrent ones, and prints the CPU time per request. On a shared machine that figure
moves by ±30 % from run to run; `--instructions` runs the same under valgrind's callgrind
twice (two request counts) and prints the instructions per request, which do not depend on
the neighbours: the way to compare two versions of the endpoint (`git stash`, run, compare).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

from bench.layers import InstantCommitter
from timedify.ingest import webhooks
from timedify.ingest.endpoint import WebhookEndpoint
from timedify.logs import configure_logging
from timedify.metrics import Metrics
from timedify.settings import Settings
from timedify.testing import sample_payload

SECRET = "endpoint-bench-secret"
SHOP = "bench-shop.myshopify.com"
CONCURRENCY = 64
WARM_UP = 2000


def _endpoint() -> WebhookEndpoint:
    settings = Settings(
        shopify_api_key="bench-key",
        shopify_api_secret=SECRET,  # type: ignore[arg-type]
        shopify_app_url="https://bench.example.com",
        database_url="sqlite:///never-opened.sqlite3",
    )
    configure_logging("INFO", "json", stream=open(os.devnull, "wb"))  # noqa: SIM115 - for the run
    return WebhookEndpoint(settings, InstantCommitter(), Metrics())  # type: ignore[arg-type]


def _scopes(count: int, start: int) -> list[dict[str, Any]]:
    topic = "app/uninstalled"
    body = json.dumps(sample_payload(topic, SHOP), separators=(",", ":")).encode()
    signature = webhooks.sign(body, SECRET.encode()).encode()
    return [
        {
            "type": "http",
            "method": "POST",
            "path": f"/webhooks/{topic}",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"x-shopify-topic", topic.encode()),
                (b"x-shopify-hmac-sha256", signature),
                (b"x-shopify-webhook-id", f"bench-{n}".encode()),
                (b"x-shopify-event-id", f"bench-{n}".encode()),
                (b"x-shopify-shop-domain", SHOP.encode()),
                (b"x-shopify-triggered-at", b"2026-11-27T10:00:00+00:00"),
                (b"x-shopify-api-version", b"2025-10"),
                (b"content-length", str(len(body)).encode()),
            ],
            "body": body,
        }
        for n in range(start, start + count)
    ]


async def _serve(endpoint: WebhookEndpoint, scopes: list[dict[str, Any]]) -> int:
    answered = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal answered
        if message["type"] == "http.response.start" and message["status"] == 200:
            answered += 1

    def request(scope: dict[str, Any]) -> Any:
        message = {"type": "http.request", "body": scope["body"], "more_body": False}

        async def receive() -> dict[str, Any]:
            return message

        return endpoint(scope, receive, send)  # type: ignore[arg-type]

    for first in range(0, len(scopes), CONCURRENCY):
        await asyncio.gather(*(request(s) for s in scopes[first : first + CONCURRENCY]))
    return answered


def run(requests: int) -> float:
    """CPU seconds per request after a warm-up (every request must be answered 200)."""
    import uvloop

    endpoint = _endpoint()
    warm, measured = _scopes(WARM_UP, 0), _scopes(requests, WARM_UP)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(endpoint, warm))
        began = time.process_time()
        answered = runner.run(_serve(endpoint, measured))
        spent = time.process_time() - began
    if answered != requests:
        raise SystemExit(f"{requests - answered} requests were not answered 200")
    return spent / requests


def instructions(low: int, high: int) -> float:
    """Instructions per request: callgrind's totals for two request counts, differenced."""
    totals = []
    for requests in (low, high):
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-m",
                "bench.endpoint",
                "--requests",
                str(requests),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise SystemExit("callgrind printed no total: is valgrind installed?")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    args = parser.parse_args()
    if args.instructions:
        print(f"{instructions(1000, 3000):,.0f} instructions per request")
    else:
        print(f"{run(args.requests) * 1e6:.1f} us CPU per request")


if __name__ == "__main__":
    main()
