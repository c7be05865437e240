"""The deploy gate: `/health` in the IETF health-check format (SPEC H1, H2).

Every database check runs on a read-only connection in a small dedicated thread pool, bounded by
`HEALTH_TIMEOUT_SECONDS`: a hung or stopped database makes `/health` answer `fail` within a
second instead of hanging the deploy. The write path's state comes from the group committer's
memory, so a database that reads but cannot commit (locked, full, read-only) also fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine

from timedify.db import sqlite_path
from timedify.errors import describe
from timedify.ingest.committer import CommitState
from timedify.ingest.iteration import PerIteration
from timedify.settings import Settings
from timedify.store import events

Status = Literal["pass", "warn", "fail"]
_RANK: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}  # states, not a password  # nosec B105


@dataclass
class Check:
    """One entry of `checks` in the health document."""

    status: Status
    output: str = ""
    component_id: str | None = None
    component_type: str | None = None
    observed_value: Any = None
    observed_unit: str | None = None

    def to_json(self, now: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"status": self.status, "time": now}
        for key, value in (
            ("componentId", self.component_id),
            ("componentType", self.component_type),
            ("observedValue", self.observed_value),
            ("observedUnit", self.observed_unit),
        ):
            if value is not None:
                doc[key] = value
        if self.output:
            doc["output"] = self.output
        return doc


@dataclass
class HealthReport:
    checks: dict[str, list[Check]] = field(default_factory=dict)

    def add(self, name: str, check: Check) -> None:
        self.checks.setdefault(name, []).append(check)

    @property
    def status(self) -> Status:
        worst: Status = "pass"
        for items in self.checks.values():
            for check in items:
                if _RANK[check.status] > _RANK[worst]:
                    worst = check.status
        return worst

    def to_json(self, version: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        return {
            "status": self.status,
            "version": "1",
            "releaseId": version,
            "serviceId": "timedify",
            "description": "Timedify webhook service",
            "checks": {
                name: [c.to_json(now) for c in items] for name, items in self.checks.items()
            },
        }


class HealthDocument:
    """The `/health` answer (H1: `200` for pass and warn, `503` for fail), rendered again only
    when a reading changed.

    Polled at thousands of requests per second, the report is almost always the very same
    object, or made of the very same `Check` objects (the cached database probe, the unchanged
    in-process checks), so the answer rendered for them is reused. Each check's `time` is when
    its reading was rendered.
    """

    def __init__(self, version: str) -> None:
        self._version = version
        self._report: HealthReport | None = None
        self._checks: list[Check] = []
        self._answer = (200, b"")

    def render(self, report: HealthReport) -> tuple[int, bytes]:
        """The HTTP status and the body for `report`."""
        if report is self._report:
            return self._answer
        checks = [check for items in report.checks.values() for check in items]
        same = len(checks) == len(self._checks) and all(
            a is b for a, b in zip(checks, self._checks, strict=True)
        )
        if not same:
            # The cache holds the checks themselves, so their ids cannot be reused meanwhile.
            self._checks = checks
            status = 503 if report.status == "fail" else 200
            self._answer = (status, orjson.dumps(report.to_json(self._version)))
        self._report = report
        return self._answer


class HealthProbe:
    """Runs the checks with a hard time bound, never more than one database probe at a time.

    Concurrent requests share the probe in flight, and a probe result younger than `MAX_AGE`
    seconds answers from memory (one older than `REFRESH_AFTER` starts a new probe in the
    background): a deploy gate, load balancers and monitors polling at once cost at most five
    probes a second, and none of them waits for the database. What lives in this process - failing
    webhook commits, a missing SQLite file, a stopped in-process worker - is checked for every
    request (the file once per event-loop iteration, for the requests that arrived together), so
    it is never stale.
    """

    # Short enough that a check run right after a change (a test, an operator's second look)
    # sees the change; long enough that continuous polling never waits for the database, and
    # that the probe's own Python (which holds the GIL) stays out of the polling's p99.
    REFRESH_AFTER = 0.2
    MAX_AGE = 0.25
    # A schema at the code's revision is read again after this long; one behind (or ahead) on
    # every probe, so a `timedify migrate` shows at once. Alembic's reading of the revision was
    # a third of the probe, and every probe holds the GIL the event loop needs for a while.
    REVISION_TTL = 5.0

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        commit_state: CommitState,
        head_revision: str,
        worker_alive: Callable[[], bool | None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._commit_state = commit_state
        self._head = head_revision
        self._worker_alive = worker_alive
        self._sqlite_file = sqlite_path(settings.database_url)
        # A `stat` through pathlib per request cost a third of the handler (2.7 of 10 us); the
        # requests of one loop iteration arrived together and share one.
        self._file_present = (
            PerIteration(self._sqlite_file.exists) if self._sqlite_file is not None else None
        )
        self._revision_read_at = _NEVER
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="timedify-health")
        self._inflight: asyncio.Future[list[tuple[str, Check]]] | None = None
        self._recent: tuple[float, list[tuple[str, Check]]] | None = None
        self._last: tuple[Check, list[tuple[str, Check]], bool, HealthReport] | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self) -> HealthReport:
        """The report; the same object while its readings are the same ones (do not change it)."""
        writes = self._write_check()
        if self._file_present is not None and not self._file_present.get():
            return _failed(writes, _MISSING_CHECK)
        checks = self._recent_checks()
        if checks is None:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self._settings.health_timeout_seconds):
                    checks = await asyncio.shield(self._probe())
            except TimeoutError:
                ms = round((time.perf_counter() - started) * 1000)
                return _failed(writes, Check("fail", f"no answer within {ms} ms"))
            except Exception as exc:  # any driver error means the database is not usable
                return _failed(writes, Check("fail", describe(exc, 200)))
        stopped = self._worker_alive() is False
        last = self._last
        if last is not None and last[0] is writes and last[1] is checks and last[2] is stopped:
            return last[3]  # polling asks thousands of times a second between two probes
        report = HealthReport()
        report.add("database:writes", writes)
        for name, check in checks:
            report.add(name, _worker_stopped() if stopped and name == "worker:heartbeat" else check)
        self._last = (writes, checks, stopped, report)
        return report

    def _recent_checks(self) -> list[tuple[str, Check]] | None:
        if self._recent is None:
            return None
        measured, checks = self._recent
        age = time.monotonic() - measured
        if age >= self.MAX_AGE:
            return None
        if age >= self.REFRESH_AFTER:
            self._probe()  # answer from memory now, have a newer result for the next ones
        return checks

    def _probe(self) -> asyncio.Future[list[tuple[str, Check]]]:
        """The database probe in flight, started if there is none."""
        if self._inflight is None:
            started = time.monotonic()
            future = asyncio.get_running_loop().run_in_executor(self._pool, self._database_checks)
            future.add_done_callback(lambda f: self._probed(f, started))
            self._inflight = future
        return self._inflight

    def _probed(self, future: asyncio.Future[list[tuple[str, Check]]], started: float) -> None:
        self._inflight = None
        if not future.cancelled() and future.exception() is None:
            self._recent = (started, future.result())

    def _write_check(self) -> Check:
        state = self._commit_state
        with state.lock:
            if state.failing:
                return Check(
                    "fail",
                    f"the last {state.consecutive_failures} webhook commit(s) failed "
                    f"({state.last_error_class})",
                    component_type="datastore",
                )
        return _WRITES_PASS

    def _database_checks(self) -> list[tuple[str, Check]]:
        path = self._sqlite_file
        if path is not None and not path.exists():
            raise FileNotFoundError(_MISSING.removeprefix("FileNotFoundError: "))
        started = time.perf_counter()
        with self._engine.connect() as conn:
            revision = self._revision(conn)
            latency = round((time.perf_counter() - started) * 1000, 1)
            connection = Check(
                "pass", component_type="datastore", observed_value=latency, observed_unit="ms"
            )
            checks = [
                ("database:connection", connection),
                ("database:migrations", self._migrations(revision)),
            ]
            if revision != self._head:
                return checks  # the other queries need the current schema
            checks.append(("worker:heartbeat", self._heartbeat(conn)))
            checks += [("webhooks:backlog", c) for c in self._backlog(conn)]
            checks += [("webhooks:deadLetters", c) for c in self._dead_letters(conn)]
        return checks

    def _revision(self, conn: Connection) -> str | None:
        if time.monotonic() - self._revision_read_at < self.REVISION_TTL:
            return self._head  # read recently, and it was the code's
        revision = MigrationContext.configure(conn).get_current_revision()
        self._revision_read_at = time.monotonic() if revision == self._head else _NEVER
        return revision

    def _migrations(self, revision: str | None) -> Check:
        if revision == self._head:
            return Check("pass", observed_value=revision)
        return Check(
            "fail",
            f"schema at {revision or 'none'}, code needs {self._head}: run `timedify migrate`",
            observed_value=revision,
        )

    def _heartbeat(self, conn: Connection) -> Check:
        if self._worker_alive() is False:
            return _worker_stopped()
        last = events.latest_heartbeat(conn)
        if last is None:
            return Check("warn", "no worker has reported a heartbeat", component_type="component")
        age = (datetime.now(UTC) - last).total_seconds()
        stale = age > self._settings.health_heartbeat_stale_seconds
        return Check(
            "warn" if stale else "pass",
            "worker heartbeat is stale" if stale else "",
            component_type="component",
            observed_value=round(age, 1),
            observed_unit="s",
        )

    def _backlog(self, conn: Connection) -> list[Check]:
        limit = timedelta(seconds=self._settings.health_backlog_warn_seconds)
        now = datetime.now(UTC)
        checks = []
        for topic, backlog in sorted(events.backlog_by_topic(conn).items()):
            oldest = backlog.oldest_received_at
            stale = oldest is not None and now - oldest > limit
            checks.append(
                Check(
                    "warn" if stale else "pass",
                    "oldest pending event is older than the limit" if stale else "",
                    component_id=topic,
                    observed_value=backlog.pending,
                )
            )
        return checks or [Check("pass", observed_value=0)]

    def _dead_letters(self, conn: Connection) -> list[Check]:
        counts = events.dead_letters_by_topic(conn)
        checks = [
            Check("warn", "unresolved dead letters", component_id=topic, observed_value=count)
            for topic, count in sorted(counts.items())
        ]
        return checks or [Check("pass", observed_value=0)]


_MISSING = "FileNotFoundError: the SQLite database file is missing"
_NEVER = float("-inf")  # a reading that is always too old
# In-process readings that do not change between requests are one object each, so that an
# unchanged report is recognised (`HealthDocument`) by the identity of its checks.
_MISSING_CHECK = Check("fail", _MISSING)
_WRITES_PASS = Check("pass", component_type="datastore")
_WORKER_STOPPED = Check("fail", "the in-process worker has stopped", component_type="component")


def _failed(writes: Check, connection: Check) -> HealthReport:
    report = HealthReport()
    report.add("database:writes", writes)
    report.add("database:connection", connection)
    return report


def _worker_stopped() -> Check:
    return _WORKER_STOPPED
