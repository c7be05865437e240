"""The worker (SPEC P1): a small loop, claim -> run -> persist outcome.

`Worker.start()/stop()` run it in a thread inside `timedify serve` (a background service of the
web app, woken by each ingest commit); `Worker.run()` is the blocking loop of `timedify worker`.
Stopping is graceful: no new claims, the current event is finished, everything still claimed is
released, and the heartbeat row says the worker stopped.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Engine

from timedify.ingest import webhooks
from timedify.logs import HotLogger, get_logger, identifier
from timedify.metrics import Metrics
from timedify.models import utcnow
from timedify.processing import batches
from timedify.processing.handlers import HANDLERS, Handler
from timedify.processing.periodic import PeriodicJob, Schedule, default_jobs
from timedify.processing.retry import RetryPolicy
from timedify.records import AttemptResult, ClaimedEvent, Outcome
from timedify.settings import Settings
from timedify.store import claims
from timedify.store.claims import WorkerIdentity

log = get_logger("timedify.processing.worker")
# The line logged for every event applied: thousands a second while a backlog drains.
hot_log = HotLogger("timedify.processing.worker")
_FORGET_STOPPED_AFTER = timedelta(days=7)
_GIVE_WAY_STEP = 0.0005
_GIVE_WAY_STEPS = 4
_GIVE_WAY_SECONDS = 0.005
# During a burst on PostgreSQL, the rest after each transaction, as a share of its time. Its
# transactions hold nothing the commits wait for, but they take the CPU and the GIL the event
# loop needs (ack p99 at c64 on 2 cores, runs of the same hour: 21-24 ms resting 0.4, 25 not
# resting; resting 0.5 or more let so many more webhooks in that applying them took ~2 x the
# burst). A sustained burst still gets ~70 % of the worker's speed.
_BURST_REST = 0.4


class Acknowledgements(Protocol):
    """What the worker inside `serve` knows of the webhooks its process acknowledges (the group
    committer): it lets them go first (SPEC W1 over P1)."""

    def waiting(self) -> bool:
        """Whether webhooks wait for their commit now."""

    def in_burst(self) -> bool:
        """Whether a burst of webhooks is on, even between its waves (none waits then)."""


class _NoAcknowledgements:
    """A worker process of its own (`timedify worker`): nothing to give way to."""

    def waiting(self) -> bool:
        return False

    def in_burst(self) -> bool:
        return False


class Worker:
    """Processes due events until stopped; safe to run many at once (leases, SKIP LOCKED)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        handlers: Mapping[str, Handler] = HANDLERS,
        wakeup: threading.Event | None = None,
        metrics: Metrics | None = None,
        jobs: Sequence[PeriodicJob] | None = None,
        after_commit: Callable[[ClaimedEvent, Outcome], None] | None = None,
        acknowledgements: Acknowledgements | None = None,
        rest: Callable[[float], object] | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._handlers = handlers
        self._wakeup = wakeup or threading.Event()
        self._metrics = metrics
        self._schedule = Schedule(default_jobs(settings, engine) if jobs is None else jobs)
        # Told of each outcome once its batch committed (processing/followups.py).
        self._after_commit = after_commit
        # In `serve`, the webhooks being acknowledged: the worker lets them go first, briefly
        # and with short transactions, so that it still keeps up with a sustained burst.
        self._acknowledgements = acknowledgements or _NoAcknowledgements()
        self._policy = RetryPolicy.from_settings(settings)
        self._lease = timedelta(seconds=settings.worker_lease_seconds)
        # Heartbeats also extend the leases of the batch in hand, well before they expire.
        self._beat_every = min(5.0, settings.worker_lease_seconds / 3)
        self._stopping = threading.Event()
        # How it rests during a burst (seconds; a stop ends the rest).
        self._rest = rest or self._stopping.wait
        self._thread: threading.Thread | None = None
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
        self._held: str | None = None
        # Claims whose release failed (the database went away): released when it is back, not
        # left to wait out their lease (their events were not applied).
        self._unreleased: list[str] = []
        # How long one transaction may take events: SQLite has one writer, and webhook commits
        # wait for this one; PostgreSQL's row locks only hold back other writers of the same rows.
        self._max_seconds = 0.02 if engine.dialect.name == "sqlite" else 0.25
        # During a burst: on SQLite its commits wait for this transaction's lock, so it is kept
        # short; PostgreSQL's commits do not wait for it.
        self._short = _GIVE_WAY_SECONDS if engine.dialect.name == "sqlite" else self._max_seconds
        self._rest_share = 0.0 if engine.dialect.name == "sqlite" else _BURST_REST
        self._take = settings.worker_batch_size
        self._backlog = False
        self._last_beat = float("-inf")
        self.processed = 0
        hostname = socket.gethostname()
        self.identity = WorkerIdentity(
            f"{hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}", hostname, os.getpid(), utcnow()
        )

    def start(self) -> None:
        """Run the loop in a background thread (the in-process worker of `serve`)."""
        self._thread = threading.Thread(target=self.run, name="timedify-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, finish the current event, release the rest, wait for the thread."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def request_stop(self) -> None:
        """Ask the loop to stop after the current event (safe from a signal handler)."""
        self._stopping.set()
        self._wakeup.set()

    def has_backlog(self) -> bool:
        """Whether more events were due than its last claim could take (it is draining a
        backlog): work that can wait (the billing re-reads) waits until it is through."""
        return self._backlog

    def alive(self) -> bool:
        """False once the in-process worker thread has died (fails `/health`)."""
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """The blocking loop: until `request_stop()`, claim and process due events."""
        log.info("worker_started", worker_id=self.identity.worker_id)
        self._forget_old_workers()
        periodic = self._schedule.start(self._stopping)
        try:
            while not self._stopping.is_set():
                try:
                    worked = self.run_once()
                except Exception as exc:  # a database outage must not kill the worker
                    log.warning("worker_error", error_class="db", error_type=type(exc).__name__)
                    self._stopping.wait(self._settings.worker_poll_seconds)
                    continue
                if not worked:
                    self._wakeup.wait(self._settings.worker_poll_seconds)
                    self._wakeup.clear()
        finally:
            if periodic is not None:
                periodic.join(10)
            self._shutdown()

    def run_once(self) -> int:
        """Claim one batch and process it; the number of events claimed."""
        self._beat_if_due()
        self._release_pending()
        token = uuid.uuid4().hex
        with self._engine.begin() as conn:
            batch = claims.claim(
                conn,
                token=token,
                limit=self._settings.worker_batch_size,
                lease=self._lease,
                now=utcnow(),
            )
        self._backlog = len(batch) >= self._settings.worker_batch_size
        if not batch:
            return 0
        self._held = token
        done = 0
        try:
            while done < len(batch) and not self._stopping.is_set():
                done += self._process(batch[done : done + self._take])
                self._beat_if_due()
        finally:
            # Never keep (and keep extending) leases on events this loop will not process.
            self._held = None
            if done < len(batch):
                self._unreleased.append(token)
                self._release_pending()
        return len(batch)

    def _process(self, events: list[ClaimedEvent]) -> int:
        """One transaction over the front of `events`; how many it processed."""
        self._let_acknowledgements_go_first()
        started = time.perf_counter()
        outcomes = batches.process_batch(
            self._engine,
            events,
            policy=self._policy,
            handlers=self._handlers,
            rng=self._rng,
            stopping=self._stopping.is_set,
            # During a burst, short transactions: the next wave's commit (closed-loop senders
            # come in waves) would otherwise meet a long one in its way.
            max_seconds=self._short if self._acknowledgements.in_burst() else self._max_seconds,
        )
        # Offer the next transaction what this one had time for (or twice what it was offered):
        # a transaction cut short has read and entered in the ledger events it then let go.
        limit = self._settings.worker_batch_size
        self._take = max(len(outcomes), 1) if len(outcomes) < len(events) else 2 * self._take
        self._take = min(self._take, limit)
        elapsed = time.perf_counter() - started
        duration = elapsed / max(len(outcomes), 1)
        self.processed += len(outcomes)
        for event, outcome in zip(events, outcomes, strict=False):
            if self._metrics is not None:
                # Smoke-test events are processed like any other, counted apart (O7).
                label = "synthetic" if webhooks.is_synthetic(event.shop_domain) else outcome.state
                self._metrics.processed.labels(event.topic, label).inc()
                self._metrics.processing_latency.labels(event.topic).observe(duration)
            _log_outcome(event, outcome, duration)
            self._follow_up(event, outcome)
        if self._rest_share and self._acknowledgements.in_burst():
            self._rest(elapsed * self._rest_share)
        return len(outcomes)

    def _let_acknowledgements_go_first(self) -> None:
        """Wait (GIL and database free) while webhooks wait for their commit, up to 2 ms:
        an acknowledgement is what Shopify waits for; the worker's events can wait that long,
        and a worker that waited longer would fall behind a sustained burst."""
        for _ in range(_GIVE_WAY_STEPS):
            if not self._acknowledgements.waiting() or self._stopping.is_set():
                return
            time.sleep(_GIVE_WAY_STEP)

    def _follow_up(self, event: ClaimedEvent, outcome: Outcome) -> None:
        if self._after_commit is None:
            return
        try:
            self._after_commit(event, outcome)
        except Exception as exc:  # the event is committed: nothing may undo or fail it now
            log.warning("followup_failed", topic=event.topic, error_type=type(exc).__name__)

    def _beat_if_due(self) -> None:
        if time.monotonic() - self._last_beat < self._beat_every:
            return
        now = utcnow()
        with self._engine.begin() as conn:
            claims.heartbeat(conn, self.identity, now=now, processed=self.processed)
            if self._held is not None:
                claims.extend_leases(conn, self._held, now + self._lease)
        self._last_beat = time.monotonic()

    def _release_pending(self) -> None:
        """Give back the events of claims this loop let go; kept for later if that fails."""
        if not self._unreleased:
            return
        try:
            with self._engine.begin() as conn:
                released = claims.release(conn, self._unreleased)
        except Exception as exc:  # still down: try again before the next claim
            log.warning("worker_release_failed", error_class="db", error_type=type(exc).__name__)
            return
        self._unreleased.clear()
        if released:
            log.info("worker_released_events", count=released)

    def _forget_old_workers(self) -> None:
        try:
            with self._engine.begin() as conn:
                claims.forget_stopped_workers(conn, utcnow() - _FORGET_STOPPED_AFTER)
        except Exception as exc:  # housekeeping only; the loop reports database trouble
            log.warning("worker_error", error_class="db", error_type=type(exc).__name__)

    def _shutdown(self) -> None:
        self._release_pending()
        try:
            with self._engine.begin() as conn:
                claims.heartbeat(
                    conn, self.identity, now=utcnow(), processed=self.processed, stopped=True
                )
        except Exception as exc:  # leases expire on their own; say that we could not clean up
            log.warning("worker_stop_incomplete", error_class="db", error_type=type(exc).__name__)
        log.info("worker_stopped", worker_id=self.identity.worker_id, processed=self.processed)


def _log_outcome(event: ClaimedEvent, outcome: Outcome, duration: float) -> None:
    fields = {
        "topic": event.topic,
        "shop": event.shop_domain,
        "webhook_id": identifier(event.webhook_id),
        "status": outcome.state,
        "attempt": event.attempts,
        "duration_ms": round(duration * 1000, 1),
    }
    if outcome.state.finished:
        hot_log.info("event_processed", note=outcome.note, **fields)
    elif outcome.state is AttemptResult.RETRYING:
        log.warning("event_failed", error_class="webhook", error_type=outcome.error_class, **fields)
    elif outcome.state is AttemptResult.DEAD:
        log.error(
            "event_dead_lettered", error_class="webhook", error_type=outcome.error_class, **fields
        )
    else:
        log.warning("event_lease_lost", **fields)
