"""The drain scenario: a stored backlog processed by `timedify worker` processes (P1).

The backlog is written straight into the database (the ingest path's own INSERT, in batches),
then N worker processes start and the backlog's size is polled until it is empty or the time
bound is up; the rate is counted from the first processed event to the last poll. The events
are the topics a merchant base sends all day (uninstalls, scope and subscription updates) over
1,000 shops; the compliance topics are rare and search stored payloads, so a backlog of them
measures that search, not the queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import func, select

from bench.services import Process, service_env
from timedify.db import make_engine
from timedify.models import PENDING_STATES, EventState, WebhookEvent
from timedify.store import events
from timedify.testing import API_VERSION, sample_payload

TOPICS = ("app_subscriptions/update", "app/scopes_update", "app/uninstalled")
SHOPS = 1000
_CHUNK = 2000


@dataclass(frozen=True)
class Drained:
    events: int
    seconds: float
    left: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def store_backlog(database_url: str, count: int) -> None:
    """`count` received events, as the ingest path would have stored them."""
    store_rows(database_url, count, ago=timedelta(minutes=10))


def store_rows(
    database_url: str,
    count: int,
    *,
    ago: timedelta,
    change: Callable[[dict[str, object]], None] = lambda row: None,
) -> None:
    """`count` events received `ago`, each passed through `change`, with the ingest INSERT."""
    engine = make_engine(database_url)
    start = datetime.now(UTC) - ago
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for first in range(0, count, _CHUNK):
                rows = [_event(i, start) for i in range(first, min(first + _CHUNK, count))]
                for row in rows:
                    change(row)
                events.insert_events(conn, rows)
    finally:
        engine.dispose()


def _event(i: int, start: datetime) -> dict[str, object]:
    topic = TOPICS[i % len(TOPICS)]
    shop = f"bench-shop-{i % SHOPS}.myshopify.com"
    at = start + timedelta(milliseconds=i)
    payload = sample_payload(topic, shop)
    if "app_subscription" in payload:
        # Each shop has a subscription of its own. The sample's one id for every shop made all
        # workers write one `subscriptions` row, each waiting for the other's commit.
        payload["app_subscription"]["admin_graphql_api_id"] = (
            f"gid://shopify/AppSubscription/{i % SHOPS}"
        )
    return {
        "webhook_id": str(uuid.uuid4()),
        "topic": topic,
        "shop_domain": shop,
        "event_id": str(uuid.uuid4()),
        "triggered_at": at,
        "api_version": API_VERSION,
        "received_at": at,
        "payload": orjson.dumps(payload),
        "state": EventState.RECEIVED,
        "attempts": 0,
        "next_attempt_at": at,
        "processed_at": None,
        "synthetic": False,
    }


def pending(database_url: str) -> int:
    """Events not yet processed (a read-only connection: it must not queue behind writers)."""
    engine = make_engine(database_url, read_only=True, busy_timeout_ms=10_000)
    states = [*PENDING_STATES, EventState.PROCESSING]
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(WebhookEvent.state.in_(states))
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def drain(
    name: str, database_url: str, secret: str, workdir: Path, *, workers: int, limit: float
) -> Drained:
    """Run `workers` worker processes on the backlog until it is empty or `limit` s passed."""
    total = pending(database_url)
    env = service_env(database_url, secret, workdir)
    procs = [
        Process(f"{name}-worker-{n}", ["-m", "timedify", "worker"], env, workdir / f"{name}.log")
        for n in range(workers)
    ]
    for proc in procs:
        proc.spawn()
    try:
        first_seen: float | None = None
        left = total
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and left > 0:
            time.sleep(0.25)
            left = pending(database_url)
            if first_seen is None and left < total:
                first_seen = time.monotonic()
        seconds = time.monotonic() - first_seen if first_seen is not None else 0.0
    finally:
        for proc in procs:
            proc.stop()
    return Drained(events=total - left, seconds=seconds, left=left)
