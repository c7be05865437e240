"""The retention scenario: `timedify retention-cleanup` deleting old events under ack traffic.

Old events (processed, received 60 days ago) are written straight into the database a service
(SQLite or PostgreSQL) is using; then `retention-cleanup --days 30` runs while wrk keeps
acknowledging webhooks at c16 against the same service, and the ack p99 during the cleanup is
compared with the p99 of the same load just before it.

PostgreSQL gets the issue's 1,000,000 events by default (`DEFAULT_EVENTS`): 100,000 written with
the ingest INSERT (~7 s), the rest copied from them by the server with new webhook ids (~15 s),
where writing all of them took ~70 s. SQLite gets 200,000: at the ~4,000 rows/s it deletes
under ack load, a million would take four minutes of the ten `make bench` has.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import orjson
from sqlalchemy import Connection, text

from bench import drain
from bench.services import service_env
from timedify.db import make_engine
from timedify.models import EventState, WebhookEvent

DEFAULT_EVENTS = {"sqlite": 200_000, "postgresql": 1_000_000}
_WRITTEN = 100_000  # PostgreSQL: events written through the ingest INSERT, the rest copied


def store_old_events(database_url: str, count: int) -> None:
    """`count` processed events received 60 days ago: what retention-cleanup removes."""

    def processed(row: dict[str, object]) -> None:
        row["state"] = EventState.PROCESSED
        row["processed_at"] = row["received_at"]

    written = count if database_url.startswith("sqlite") else min(count, _WRITTEN)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            before = conn.execute(text("SELECT coalesce(max(id), 0) FROM webhook_events")).scalar()
        drain.store_rows(database_url, written, ago=timedelta(days=60), change=processed)
        if count > written:
            with engine.begin() as conn:
                _copy_on_server(conn, before, written, count - written)
    finally:
        engine.dispose()


def _copy_on_server(conn: Connection, before: int, written: int, more: int) -> None:
    """`more` copies of the events written after id `before`, each with a webhook id of its own.

    Only those: the service's warm-up and earlier load left young events in the table. In the
    order they were received, as the service stores them: copied in any other order, the walk
    along the index reads the table's pages at random.
    """
    columns = [c.name for c in WebhookEvent.__table__.columns if c.name != "id"]
    values = ["webhook_id || '.' || copy" if c == "webhook_id" else c for c in columns]
    conn.execute(
        text(
            f"INSERT INTO webhook_events ({', '.join(columns)}) SELECT {', '.join(values)} "
            "FROM (SELECT * FROM webhook_events WHERE id > :before) AS written, "
            "generate_series(1, :copies) AS copy ORDER BY received_at, copy LIMIT :more"
        ),
        {"before": before, "copies": -(-more // written), "more": more},
    )


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
