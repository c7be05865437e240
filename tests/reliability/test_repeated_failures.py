"""A failure that every commit meets (a full disk, a locked file, a database down) is logged once
per interval with its count, not once per batch, and `alerting-check` still counts every one.
Real `timedify serve` under a stream of webhooks; SQLite locked by another process, and a
PostgreSQL server stopped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from tests.support.cli import run_cli
from tests.support.figures import record
from tests.support.helpers import post_webhook
from tests.support.pgcluster import PgCluster
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from tests.support.sqlite_lock import sqlite_locked_by_another_process
from timedify.db import sqlite_path
from timedify.ingest.committer import FAILURE_LOG_INTERVAL_SECONDS
from timedify.testing import signed_webhook

FAULT_SECONDS = 3.0


def _refused_during(url: str, seconds: float) -> int:
    """Four senders posting webhooks for `seconds`; how many got 503."""
    refused = [0]
    stop_at = time.monotonic() + seconds

    def send() -> None:
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < stop_at:
                hook = signed_webhook("app/scopes_update", SHOP, SECRET)
                response = client.post(url + hook.path(), content=hook.body, headers=hook.headers)
                if response.status_code == 503:
                    refused[0] += 1

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(seconds + 10)
    return refused[0]


def _store_failures(log: Path) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    return [line for line in lines if line.get("event") == "webhook_store_failed"]


def _run(env: dict[str, str], tmp_path: Path, fault: Callable[[], object], name: str) -> None:
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        with fault():  # type: ignore[attr-defined]
            refused = _refused_during(service.url, FAULT_SECONDS)
        hook = signed_webhook("app/scopes_update", SHOP, SECRET)
        deadline = time.monotonic() + 15
        while post_webhook(service.url, hook).status_code != 200:  # recovered: the count is out
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.1)
    finally:
        assert service.stop_gracefully()
    lines = _store_failures(service.log_path)
    failures = sum(int(line.get("occurrences", 1)) for line in lines)  # type: ignore[call-overload]
    record(name, answers_503=refused, store_failed_lines=len(lines), store_failures=failures)
    assert refused > 0
    assert failures > 0
    # The first at once, one per interval while it lasts, the rest when it stopped.
    assert len(lines) <= 2 + FAULT_SECONDS / FAILURE_LOG_INTERVAL_SECONDS
    assert failures > len(lines), "the repeated failures were counted, not dropped"

    done = run_cli(env, "alerting-check", "--logs", str(service.log_path), "--no-db", "--json")
    findings = {f["name"]: f for f in json.loads(done.stdout)["findings"]}
    # db_errors: every failed commit, plus the 503 answers it caused (logged one by one).
    assert findings["db_errors"]["value"] == failures + refused


def test_sqlite_locked_failures_are_counted_not_repeated(sqlite_url: str, tmp_path: Path) -> None:
    path = sqlite_path(sqlite_url)
    assert path is not None
    env = settings_env(sqlite_url, tmp_path, WORKER_IN_PROCESS="false", DB_BUSY_TIMEOUT_MS="20")
    _run(env, tmp_path, lambda: sqlite_locked_by_another_process(path), "SQLite locked: log lines")


def test_postgres_down_failures_are_counted_not_repeated(
    own_pg: tuple[PgCluster, str], tmp_path: Path
) -> None:
    cluster, db_url = own_pg
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false")

    class Stopped:
        def __enter__(self) -> None:
            cluster.stop("immediate")

        def __exit__(self, *_: object) -> None:
            cluster.start()

    _run(env, tmp_path, Stopped, "PostgreSQL stopped: log lines")
