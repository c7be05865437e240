"""Forged and wrong timestamps (P5): `X-Shopify-Triggered-At` is not signed, so a captured
delivery replayed with a 2099 header must not wedge the shop; ordering rests on the payload's
signed `updated_at`. A time that overflows (`9999-12-31T23:59:59-14:00`) is never a 503 and never
fails the webhooks sharing its commit. Real `timedify serve` with its worker, both databases.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.figures import record
from tests.support.helpers import events, post_webhook, table_rows
from tests.support.load import deliver, scaled
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.models import EventState, Shop
from timedify.testing import SignedWebhook, sample_payload, signed_webhook

FORGED = datetime(2099, 1, 1, tzinfo=UTC)
OVERFLOW = "9999-12-31T23:59:59-14:00"
FINISHED = {EventState.PROCESSED, EventState.IGNORED}


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(db_url, tmp_path, WORKER_POLL_SECONDS="0.05")
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


def _wait(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _applied(url: str, db_url: str, hook: SignedWebhook) -> dict[str, object]:
    """Deliver `hook` (200 expected) and wait until the worker finished it; its row."""
    assert post_webhook(url, hook, timeout=5).status_code == 200
    row: dict[str, object] = {}

    def finished() -> bool:
        rows = [e for e in events(db_url) if e["webhook_id"] == hook.webhook_id]
        row.update(rows[0] if rows else {})
        return bool(rows) and rows[0]["state"] in FINISHED

    _wait(finished, f"{hook.topic} was not applied")
    return row


def _subscription(status: str, updated: datetime, triggered: datetime) -> SignedWebhook:
    payload = sample_payload("app_subscriptions/update", SHOP)
    payload["app_subscription"]["status"] = status
    payload["app_subscription"]["updated_at"] = updated.isoformat()
    return signed_webhook(
        "app_subscriptions/update", SHOP, SECRET, payload=payload, triggered_at=triggered
    )


def test_a_forged_future_header_does_not_wedge_the_shop(
    service: ServiceProcess, db_url: str
) -> None:
    now = datetime.now(UTC)
    # A captured delivery replayed with a forged header, then the merchant's real cancellation.
    _applied(service.url, db_url, _subscription("ACTIVE", now - timedelta(minutes=10), FORGED))
    cancelled = _applied(service.url, db_url, _subscription("CANCELLED", now, now))
    assert cancelled["state"] == EventState.PROCESSED, cancelled.get("last_error")
    [shop] = table_rows(db_url, Shop)
    assert shop["plan_status"] == "CANCELLED"

    # shop/redact with a forged header: the shop's next real event is still applied.
    redact = signed_webhook("shop/redact", SHOP, SECRET, triggered_at=FORGED)
    _applied(service.url, db_url, redact)
    time.sleep(0.01)
    later = signed_webhook("app/scopes_update", SHOP, SECRET, triggered_at=datetime.now(UTC))
    scopes = _applied(service.url, db_url, later)
    assert scopes["state"] == EventState.PROCESSED, scopes.get("note")


def test_an_overflowing_time_is_never_a_503_nor_fails_its_batch(
    service: ServiceProcess, db_url: str
) -> None:
    hooks = [signed_webhook("app/scopes_update", SHOP, SECRET) for _ in range(scaled(200))]
    for hook in hooks[::4]:
        hook.headers["X-Shopify-Triggered-At"] = OVERFLOW
    health: list[int] = []

    async def scenario() -> object:
        load = asyncio.create_task(deliver(service.url, hooks, concurrency=16, deadline_s=30))
        async with httpx.AsyncClient(timeout=2) as client:
            while not load.done():
                health.append((await client.get(service.url + "/health")).status_code)
                await asyncio.sleep(0.1)
        return await load

    result = asyncio.run(scenario())
    kind = db_url.split(":")[0].split("+")[0]
    record(
        f"overflowing X-Shopify-Triggered-At on 1 in 4 webhooks ({kind})",
        sent=len(hooks),
        acknowledged=len(result.acked),  # type: ignore[attr-defined]
        answers_503=result.statuses[503],  # type: ignore[attr-defined]
        health_fail=health.count(503),
    )
    assert set(result.statuses) == {200}, result.statuses  # type: ignore[attr-defined]
    assert 503 not in health
    ids = {h.webhook_id for h in hooks}
    _wait(
        lambda: {e["webhook_id"] for e in events(db_url) if e["state"] in FINISHED} >= ids,
        "every webhook, the overflowing ones included, is applied",
    )
