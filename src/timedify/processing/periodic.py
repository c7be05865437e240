"""Jobs the worker runs every so often beside the events (S4's token refresh).

Each worker process runs them; a job that must happen once across processes takes its own lock
(the token refresh does, per shop). A failing job is logged and tried again at its next turn:
it never stops the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from timedify.logs import get_logger
from timedify.settings import Settings

log = get_logger("timedify.processing.periodic")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[], object]


class Schedule:
    """Runs each job when its interval has passed; the first run is due at once."""

    def __init__(
        self, jobs: Sequence[PeriodicJob], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._jobs = list(jobs)
        self._clock = clock
        self._due = {job.name: clock() for job in self._jobs}

    def run_due(self) -> None:
        for job in self._jobs:
            if self._clock() < self._due[job.name]:
                continue
            try:
                job.run()
            except Exception as exc:  # the next turn tries again; events go on meanwhile
                log.warning("periodic_job_failed", job=job.name, error_type=type(exc).__name__)
            self._due[job.name] = self._clock() + job.every_seconds


def default_jobs(settings: Settings, engine: Engine) -> list[PeriodicJob]:
    """The jobs of every worker: the refresh of expiring Shopify tokens (when a key is set)."""
    from timedify.shopify.tokens import refresh_job

    return [job for job in (refresh_job(settings, engine),) if job is not None]
