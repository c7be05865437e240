"""The retention scenario: `timedify retention-cleanup` deleting old events under ack traffic.

Old events (processed, received 60 days ago) are written straight into the database a service
(SQLite or PostgreSQL) is using; then `retention-cleanup --days 30` runs while wrk keeps
acknowledging webhooks at c16 against the same service, and the ack p99 during the cleanup is
compared with the p99 of the same load just before it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import orjson

from bench import drain
from bench.services import service_env
from timedify.models import EventState


def store_old_events(database_url: str, count: int) -> None:
    """`count` processed events received 60 days ago: what retention-cleanup removes."""

    def processed(row: dict[str, object]) -> None:
        row["state"] = EventState.PROCESSED
        row["processed_at"] = row["received_at"]

    drain.store_rows(database_url, count, ago=timedelta(days=60), change=processed)


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
        # The load runs in 2 s wrk windows and `running()` is asked between them: timed from
        # there, a 7 s cleanup would count as 8 s. Its one line of output fits the pipe.
        self._exited = threading.Thread(target=self._time_exit, daemon=True)
        self._exited.start()

    def _time_exit(self) -> None:
        self.proc.wait()
        self.seconds = time.perf_counter() - self.started

    def running(self) -> bool:
        return self._exited.is_alive()

    def wait(self, timeout: float) -> int:
        """Rows deleted (all rules), once the command has finished."""
        out, _ = self.proc.communicate(timeout=timeout)
        self._exited.join()
        if self.proc.returncode != 0:
            raise RuntimeError(f"retention-cleanup exited with {self.proc.returncode}")
        counts = orjson.loads(out)
        return sum(v for v in counts.values() if isinstance(v, int) and not isinstance(v, bool))
