"""Issue 7.1, 7.3, 7.4 with the worker: crashes, scale-out and SIGTERM under load (P1, W3, W4).

Every figure is measured from the database: an event is applied exactly once when it has
exactly one `processed` attempt (the attempt is written in the handler's own transaction) and
one row in the applied-events ledger.
"""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

from sqlalchemy import func, select

from tests.support.checks import assert_applied_exactly_once, count, in_state, wait_for
from tests.support.figures import record
from tests.support.helpers import events
from tests.support.load import deliver, scaled
from tests.support.servers import ServiceProcess, WorkerProcess
from tests.support.settings import SECRET, settings_env
from timedify.models import EventAttempt, EventState
from timedify.testing import SignedWebhook, signed_webhook


def shop_hooks(n: int) -> list[SignedWebhook]:
    """Independent merchant actions: a scopes update of its own shop each."""
    return [
        signed_webhook("app/scopes_update", f"load-{i}.myshopify.com", SECRET) for i in range(n)
    ]


def twice_applied(db_url: str) -> int:
    stmt = select(func.count()).select_from(
        select(EventAttempt.event_pk)
        .where(EventAttempt.outcome == "processed")
        .group_by(EventAttempt.event_pk)
        .having(func.count() > 1)
        .subquery()
    )
    return count(db_url, stmt)


def kill_repeatedly(
    proc: ServiceProcess | WorkerProcess, stop: threading.Event, times: int, seed: int
) -> list[int]:
    rng = random.Random(seed)
    done = []
    for i in range(times):
        if stop.wait(rng.uniform(0.1, 0.6)):  # within a delivery: 400 webhooks take about a second
            break
        proc.kill()
        proc.start()
        done.append(i)
    return done


def run_with_killer(
    url: str, proc: ServiceProcess | WorkerProcess, hooks: list[SignedWebhook], kills: int
) -> tuple[set[str], int]:
    stop = threading.Event()
    killed: list[int] = []
    thread = threading.Thread(
        target=lambda: killed.extend(kill_repeatedly(proc, stop, kills, seed=11)), daemon=True
    )
    thread.start()
    try:
        result = asyncio.run(
            deliver(url, hooks, concurrency=32, deadline_s=60 * scaled(1), request_timeout_s=6)
        )
    finally:
        stop.set()
        thread.join(30)
    return result.acked, len(killed)


def test_kill_9_of_server_with_in_process_worker(db_url: str, tmp_path: Path) -> None:
    """The service and its worker die together, repeatedly; each event is applied once."""
    env = settings_env(db_url, tmp_path, WORKER_LEASE_SECONDS="5")
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    hooks = shop_hooks(scaled(400))
    try:
        acked, kills = run_with_killer(service.url, service, hooks, scaled(3))
        wait_for(
            lambda: in_state(db_url, EventState.PROCESSED) == len(hooks),
            90,
            "every event processed after the crashes",
        )
    finally:
        service.kill()
    stored = {e["webhook_id"] for e in events(db_url)}
    record(
        f"kill -9 serve+worker x{kills} ({db_url.split(':')[0].split('+')[0]})",
        sent=len(hooks),
        acknowledged=len(acked),
        lost=len(acked - stored),
        applied_twice=twice_applied(db_url),
    )
    assert kills >= 2
    assert acked == {h.webhook_id for h in hooks}
    assert_applied_exactly_once(db_url, len(hooks))


def test_kill_9_of_a_separate_worker(db_url: str, tmp_path: Path) -> None:
    env = settings_env(
        db_url,
        tmp_path,
        WORKER_LEASE_SECONDS="5",
        WORKER_IN_PROCESS="false",
        WORKER_POLL_SECONDS="0.05",
    )
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    hooks = shop_hooks(scaled(400))
    try:
        acked, kills = run_with_killer(service.url, worker, hooks, scaled(3))
        wait_for(
            lambda: in_state(db_url, EventState.PROCESSED) == len(hooks),
            90,
            "every event processed after the worker crashes",
        )
    finally:
        worker.kill()
        service.kill()
    record(
        f"kill -9 worker x{kills} ({db_url.split(':')[0].split('+')[0]})",
        sent=len(hooks),
        acknowledged=len(acked),
        applied_twice=twice_applied(db_url),
    )
    assert kills >= 2
    assert acked == {h.webhook_id for h in hooks}
    assert_applied_exactly_once(db_url, len(hooks))


def test_scale_out_two_servers_two_workers_duplicates(request: object, tmp_path: Path) -> None:
    """Two `serve` and two `worker` processes on one PostgreSQL; every webhook is delivered to
    both servers at once: each is stored once and applied exactly once."""
    from tests.support.databases import fresh_database

    db_url = fresh_database("postgresql", request, tmp_path)  # type: ignore[arg-type]
    env = settings_env(
        db_url,
        tmp_path,
        WORKER_IN_PROCESS="false",
        WORKER_POLL_SECONDS="0.05",
        WORKER_BATCH_SIZE="20",
    )
    servers = [ServiceProcess(env, tmp_path / f"serve{i}.log").start() for i in range(2)]
    workers = [WorkerProcess(env, tmp_path / f"worker{i}.log").start() for i in range(2)]
    hooks = shop_hooks(scaled(500))

    async def both() -> list[set[str]]:
        results = await asyncio.gather(
            *(deliver(s.url, hooks, concurrency=16, deadline_s=90) for s in servers)
        )
        return [r.acked for r in results]

    try:
        acked = asyncio.run(both())
        wait_for(
            lambda: in_state(db_url, EventState.PROCESSED) == len(hooks),
            120,
            "every event processed by the two workers",
        )
        for worker in workers:
            assert worker.terminate() == 0
        for server in servers:
            assert server.stop_gracefully()
    finally:
        for proc in [*workers, *servers]:
            proc.kill()
    record(
        "2 serve + 2 worker, every webhook to both servers (postgresql)",
        sent=2 * len(hooks),
        acknowledged=sum(map(len, acked)),
        stored=len(events(db_url)),
        applied_twice=twice_applied(db_url),
    )
    assert all(a == {h.webhook_id for h in hooks} for a in acked)
    assert_applied_exactly_once(db_url, len(hooks))


def test_sigterm_under_load_finishes_in_flight_and_leaves_nothing_claimed(
    db_url: str, tmp_path: Path
) -> None:
    """SIGTERM while webhooks arrive: in-flight requests complete, no event stays claimed, and
    the next start processes the rest."""
    env = settings_env(db_url, tmp_path)
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    hooks = shop_hooks(scaled(600))
    first_acks: list[int] = []

    def on_ack(result: object) -> None:
        acked = len(result.acked)  # type: ignore[attr-defined]
        if acked == len(hooks) // 3 and not first_acks:
            first_acks.append(acked)
            threading.Thread(target=service.stop_gracefully, daemon=True).start()

    async def until_down() -> set[str]:
        result = await deliver(service.url, hooks, concurrency=16, deadline_s=15, on_ack=on_ack)
        return result.acked

    acked_before = asyncio.run(until_down())
    assert service.proc is not None
    service.proc.wait(30)
    assert "Traceback" not in service.logs()
    assert in_state(db_url, EventState.PROCESSING) == 0, "no event left claimed"
    assert acked_before <= {e["webhook_id"] for e in events(db_url)}
    service.start()
    try:
        rest = asyncio.run(deliver(service.url, hooks, concurrency=16, deadline_s=60))
        wait_for(
            lambda: in_state(db_url, EventState.PROCESSED) == len(hooks),
            90,
            "the next start processes the rest",
        )
    finally:
        assert service.stop_gracefully()
    assert acked_before | rest.acked == {h.webhook_id for h in hooks}
    assert_applied_exactly_once(db_url, len(hooks))
    assert in_state(db_url, EventState.PROCESSING) == 0
