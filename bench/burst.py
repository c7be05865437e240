"""The e2e scenario's pieces: its webhooks, the server as shipped, one burst and its backlog.

A burst of signed webhooks at c64 mixes the topics a merchant base sends all day (scope and
subscription updates, uninstalls) over 600 shops, each shop with bodies of its own; then the
backlog is polled until nothing is pending. Shopify signs only the body, so the bodies are signed
here once and the Lua script gives every request a fresh webhook id and event id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from bench import wrk
from bench.services import Process, acked_counts, service_env
from bench.wrk import Hook
from timedify.db import make_engine
from timedify.models import PENDING_STATES, EventState, WebhookEvent
from timedify.testing import sample_payload

TOPICS = ("app/scopes_update", "app_subscriptions/update", "app/uninstalled")
SHOPS = 600
CONNECTIONS = 64
# How long a burst's backlog may take to apply before the run gives up, in bursts.
WAIT_BURSTS = 6
POLL_SECONDS = 0.25


def shop_domain(i: int) -> str:
    return f"bench-shop-{i}.myshopify.com"


def hooks(secret: str, shops: int = SHOPS) -> list[Hook]:
    """Every topic's body for every shop, signed with `secret`, topics interleaved."""
    return [
        wrk.signed(topic, shop_domain(i), _payload(topic, shop_domain(i), i), secret)
        for i in range(shops)
        for topic in TOPICS
    ]


def _payload(topic: str, shop: str, i: int) -> dict[str, object]:
    """The documentation's sample, made the shop's own: its id, its own subscription."""
    payload = sample_payload(topic, shop)
    shop_id = 548380009 + i
    if "app_subscription" in payload:
        # One subscription id for every shop would make every event write the same row.
        payload["app_subscription"]["admin_graphql_api_id"] = (
            f"gid://shopify/AppSubscription/{1029266954 + i}"
        )
        payload["app_subscription"]["admin_graphql_api_shop_id"] = f"gid://shopify/Shop/{shop_id}"
    else:
        payload["id"] = shop_id
    return payload


def script(directory: Path, secret: str, prefix: str, shops: int = SHOPS) -> Path:
    """The Lua script of a burst: the signed hooks in turn, each request with unique ids."""
    return wrk.hooks_script(directory / f"e2e-{prefix}.lua", hooks(secret, shops), prefix)


_UNAPPLIED = (*PENDING_STATES, EventState.PROCESSING)


class Backlog:
    """The events table's states, read on a read-only connection (it must not queue behind
    the writers)."""

    def __init__(self, database_url: str) -> None:
        self._engine: Engine = make_engine(database_url, read_only=True, busy_timeout_ms=10_000)

    def states(self) -> dict[str, int]:
        """How many events are in each state."""
        query = select(WebhookEvent.state, func.count()).group_by(WebhookEvent.state)
        with self._engine.connect() as conn:
            return {str(state): int(n) for state, n in conn.execute(query)}

    def pending(self) -> int:
        """Events not applied yet: received, retrying or being processed."""
        states = self.states()
        return sum(states.get(s, 0) for s in _UNAPPLIED)

    def any_pending(self) -> bool:
        """Whether an event is not applied yet: one step along the due index, where counting
        reads the whole table (38 ms of a PostgreSQL backend's CPU after a burst, every poll,
        taken from the service measured)."""
        query = select(WebhookEvent.id).where(WebhookEvent.state.in_(_UNAPPLIED)).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None

    def wait_empty(self, limit: float) -> tuple[float, int]:
        """Poll until nothing is pending or `limit` s passed: (when, monotonic; events left)."""
        deadline = time.monotonic() + limit
        while (busy := self.any_pending()) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        return time.monotonic(), self.pending() if busy else 0

    def close(self) -> None:
        self._engine.dispose()


@contextmanager
def backlog(database_url: str) -> Iterator[Backlog]:
    counter = Backlog(database_url)
    try:
        yield counter
    finally:
        counter.close()


def shipped(name: str, database_url: str, secret: str, workdir: Path) -> Process:
    """`timedify serve` as fly.toml's app group and `make run` start it: the worker in-process."""
    env = {**service_env(database_url, secret, workdir), "WORKER_IN_PROCESS": "true"}
    args = ["-m", "timedify", "serve"]
    return Process(name, args, env, workdir / f"{name}.log").start("/health/live")


@dataclass(frozen=True)
class Burst:
    """One burst and what followed it, on one server."""

    ack: wrk.Result
    acknowledged: int  # new events the service counted (its /metrics), in flight at the end too
    backlog: int  # pending when the burst ended
    applied_after: float  # seconds from the burst's start until nothing was pending (or the bound)
    left: int  # pending when the bound was reached (0: all applied)
    dead: int  # events that ended as dead letters
    cpu_us: float  # the server's CPU time per acknowledged event, burst and backlog

    @property
    def rate(self) -> float:
        """End to end: acknowledged ÷ seconds until all of them were applied."""
        return self.acknowledged / self.applied_after if self.applied_after else 0.0


def warm_up(proc: Process, database_url: str, workdir: Path, secret: str, limit: float) -> None:
    """Load the server's code paths and caches, then let its worker apply what that stored."""
    wrk.run(proc.url, script(workdir, secret, f"w{time.monotonic_ns()}"), connections=16, seconds=1)
    with backlog(database_url) as counter:
        counter.wait_empty(limit)


def burst(
    proc: Process, database_url: str, lua: Path, *, seconds: float, wait: bool = True
) -> Burst:
    """`seconds` of c64 against `proc`, then (with `wait`) until nothing is pending."""
    new_before, _ = acked_counts(proc.url)
    cpu_before = proc.cpu_seconds()
    with backlog(database_url) as counter:
        started = time.monotonic()
        ack = wrk.run(proc.url, lua, connections=CONNECTIONS, seconds=seconds)
        pending = counter.pending()
        done, left = (
            counter.wait_empty(seconds * WAIT_BURSTS) if wait else (time.monotonic(), pending)
        )
        dead = counter.states().get(EventState.DEAD, 0)
    acknowledged = acked_counts(proc.url)[0] - new_before
    cpu = proc.cpu_seconds() - cpu_before
    return Burst(
        ack=ack,
        acknowledged=acknowledged,
        backlog=pending,
        applied_after=done - started,
        left=left,
        dead=dead,
        cpu_us=cpu * 1e6 / max(acknowledged, 1),
    )
