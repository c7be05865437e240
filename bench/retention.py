"""The retention scenario: `timedify retention-cleanup` deleting old events under ack traffic.

Old events (processed, received 60 days ago) are written straight into the database the SQLite
service is using; then `retention-cleanup --days 30` runs while wrk keeps acknowledging webhooks
at c16 against the same service, and the ack p99 during the cleanup is compared with the p99 of
the same load just before it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench import drain
from bench.services import service_env
from timedify import store
from timedify.db import make_engine
from timedify.models import EventState

_CHUNK = 5000


def store_old_events(database_url: str, count: int) -> None:
    """`count` processed events received 60 days ago: what retention-cleanup removes."""
    engine = make_engine(database_url)
    start = datetime.now(UTC) - timedelta(days=60)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for first in range(0, count, _CHUNK):
                rows = []
                for i in range(first, min(first + _CHUNK, count)):
                    row = drain._event(i, start)
                    row["state"] = EventState.PROCESSED
                    row["processed_at"] = row["received_at"]
                    rows.append(row)
                store.insert_events(conn, rows)
    finally:
        engine.dispose()


class Cleanup:
    """`timedify retention-cleanup --days 30 --json` as a subprocess."""

    def __init__(self, database_url: str, secret: str, workdir: Path) -> None:
        env = service_env(database_url, secret, workdir)
        args = ["-m", "timedify", "retention-cleanup", "--days", "30", "--json"]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.seconds = 0.0

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Rows deleted (all rules), once the command has finished."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.seconds = time.perf_counter() - self.started
        if self.proc.returncode != 0:
            raise RuntimeError(f"retention-cleanup exited with {self.proc.returncode}")
        counts = orjson.loads(out)
        return sum(v for v in counts.values() if isinstance(v, int) and not isinstance(v, bool))
