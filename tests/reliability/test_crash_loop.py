"""Issue 7.1 / W4: kill -9 the server several times at random points under load.

Clients retry every non-2xx and every connection error, as Shopify does. Figures: webhooks
acknowledged, lost (must be 0), stored twice (must be 0).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

from tests.support.figures import record
from tests.support.helpers import events
from tests.support.load import deliver, scaled
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.testing import signed_webhook

KILLS = scaled(3)


def _killer(service: ServiceProcess, stop: threading.Event, rng: random.Random) -> list[float]:
    """Kill the service at random moments and start it again, `KILLS` times."""
    moments = []
    for _ in range(KILLS):
        if stop.wait(rng.uniform(0.1, 0.6)):
            break
        service.kill()
        moments.append(time.monotonic())
        service.start()
    return moments


def test_kill_9_loop_loses_nothing(db_url: str, tmp_path: Path) -> None:
    env = settings_env(db_url, tmp_path)
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    hooks = [signed_webhook("app/scopes_update", SHOP, SECRET) for _ in range(scaled(600))]
    stop = threading.Event()
    kills: list[float] = []
    thread = threading.Thread(
        target=lambda: kills.extend(_killer(service, stop, random.Random(7))), daemon=True
    )
    thread.start()
    try:
        result = asyncio.run(
            deliver(
                service.url, hooks, concurrency=32, deadline_s=60 * scaled(1), request_timeout_s=6
            )
        )
    finally:
        stop.set()
        thread.join(30)
        service.kill()
    stored = [e["webhook_id"] for e in events(db_url)]
    lost = result.acked - set(stored)
    record(
        f"kill -9 server x{len(kills)} ({db_url.split(':')[0].split('+')[0]})",
        sent=len(hooks),
        acknowledged=len(result.acked),
        lost=len(lost),
        stored_twice=len(stored) - len(set(stored)),
        attempts=result.attempts,
        max_answer_s=round(result.max_latency, 2),
    )
    assert len(kills) >= 2, "the server was really killed under load"
    assert result.acked == {h.webhook_id for h in hooks}, result.statuses
    assert not lost, f"{len(lost)} acknowledged webhooks lost"
    assert len(stored) == len(set(stored)), "a webhook was stored twice"
