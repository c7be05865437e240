"""A Shopify-like sender for load and fault tests: concurrent, retrying every non-2xx.

Shopify retries a delivery that did not get a 2xx; so do these clients (much faster), so a test
can check that every webhook is eventually acknowledged exactly as it would be in production.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from timedify.testing import SignedWebhook


def scaled(count: int) -> int:
    """`count` in `make test`; multiplied by TIMEDIFY_RELIABILITY_SCALE in `make reliability`."""
    return count * max(1, int(os.environ.get("TIMEDIFY_RELIABILITY_SCALE", "1")))


@dataclass
class LoadResult:
    acked: set[str] = field(default_factory=set)
    statuses: Counter[int | str] = field(default_factory=Counter)
    max_latency: float = 0.0
    attempts: int = 0


async def deliver(
    url: str,
    hooks: Sequence[SignedWebhook],
    *,
    concurrency: int = 16,
    deadline_s: float = 60.0,
    retry_delay_s: float = 0.1,
    request_timeout_s: float = 8.0,
    on_ack: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Send every hook until it gets a 2xx or the deadline passes."""
    result = LoadResult()
    queue: asyncio.Queue[SignedWebhook] = asyncio.Queue()
    for hook in hooks:
        queue.put_nowait(hook)
    stop_at = time.monotonic() + deadline_s

    async def sender(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop_at:
            try:
                hook = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.monotonic()
            try:
                response = await client.post(
                    url + hook.path(), content=hook.body, headers=hook.headers
                )
                status: int | str = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            result.attempts += 1
            result.max_latency = max(result.max_latency, time.monotonic() - started)
            result.statuses[status] += 1
            if isinstance(status, int) and 200 <= status < 300:
                result.acked.add(hook.webhook_id)
                if on_ack is not None:
                    on_ack(result)
            else:
                queue.put_nowait(hook)
                await asyncio.sleep(retry_delay_s)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=request_timeout_s, limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return result
