"""Jobs the worker runs every so often beside the events (S4's token refresh).

Each worker process runs them; a job that must happen once across processes takes its own lock
(the token refresh does, per shop). A failing job is logged and tried again at its next turn:
it never stops the worker.
"""

from __future__ import annotations

import threading
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
    """Runs each job when its interval has passed; the first run is due at once.

    `start` runs them in a thread of their own: a job calls Shopify (with retries and timeouts)
    and must never hold the worker's loop, its leases or the events behind them.
    """

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

    def start(
        self, stopping: threading.Event, tick_seconds: float = 1.0
    ) -> threading.Thread | None:
        """Run the due jobs every `tick_seconds` until `stopping` is set; None without jobs."""
        if not self._jobs:
            return None

        def loop() -> None:
            while not stopping.is_set():
                self.run_due()
                stopping.wait(tick_seconds)

        thread = threading.Thread(target=loop, name="timedify-periodic", daemon=True)
        thread.start()
        return thread


def default_jobs(settings: Settings, engine: Engine) -> list[PeriodicJob]:
    """The jobs of every worker: token refresh and shops sync (when a token key is set)."""
    from timedify.shopify.services import ShopifyServices

    shopify = ShopifyServices.optional(settings, engine)
    return shopify.worker_jobs() if shopify is not None else []
