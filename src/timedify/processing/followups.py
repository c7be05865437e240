"""Work that follows an applied webhook, after its batch committed (S7's re-read of billing).

The worker hands each committed outcome to `FollowUps` (its `after_commit` hook); for the
topics it knows, the shop is queued and a thread of its own calls the action, so that an Admin
API call (with its retries) never holds the worker's loop, its leases or its transaction. The
event is already processed when the action runs: a failing action is logged and never fails,
retries or loses the webhook; the daily `shops sync` repairs whatever it left unread.

A queued shop waits `settle` seconds before its action runs, and every change to it arriving
meanwhile rides along: Shopify sends a subscription's changes in quick succession (and a
backlog holds many per shop), and one read made after the last of them answers them all. Each
read costs an Admin API call, or ~1 ms of the worker's CPU where the shop has no usable token,
and that CPU (and the GIL) is the worker's and, inside `serve`, the acknowledgements' too: while
`busy()` says a burst of webhooks is on or the worker drains a backlog, actions wait, each at
most `MAX_DEFER_SECONDS` beyond its settle time, and the shop's changes meanwhile ride along (a
re-read is the least urgent work there is; the merchant's page reads billing itself when
opened).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping

from timedify.logs import get_logger
from timedify.records import AttemptResult, ClaimedEvent, Outcome

log = get_logger("timedify.processing.followups")
Action = Callable[[str], object]  # called with the shop domain
SETTLE_SECONDS = 2.0
MAX_DEFER_SECONDS = 30.0
_BUSY_STEP = 0.05


class FollowUps:
    """`after_commit` hook of the worker: runs `actions[topic](shop)` off the worker's loop.

    A shop already waiting for the same topic is not queued twice (one read answers both), and
    at most `max_pending` wait: beyond that a follow-up is dropped with a log line. An action
    runs `settle` seconds after its shop was queued at the earliest, later while `busy()` (up to
    `MAX_DEFER_SECONDS`), at once when stopping.
    """

    def __init__(
        self,
        actions: Mapping[str, Action],
        *,
        max_pending: int = 1000,
        settle: float = SETTLE_SECONDS,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self._actions = dict(actions)
        self._max_pending = max_pending
        self._settle = settle
        self._busy = busy
        self._hurry = threading.Event()  # stopping: no more waiting for changes to settle
        self._queue: queue.SimpleQueue[tuple[float, str, str] | None] = queue.SimpleQueue()
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def __call__(self, event: ClaimedEvent, outcome: Outcome) -> None:
        if outcome.state != AttemptResult.PROCESSED or event.topic not in self._actions:
            return
        key = (event.topic, event.shop_domain)
        with self._lock:
            if key in self._pending:
                return
            if len(self._pending) >= self._max_pending:
                log.warning("followup_dropped", topic=event.topic, shop=event.shop_domain)
                return
            self._pending.add(key)
            self._idle.clear()
            self._ensure_thread()
        self._queue.put((time.monotonic() + self._settle, *key))

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (within `timeout`), then end the thread."""
        if self._thread is not None:
            self._hurry.set()
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running (tests, graceful stops)."""
        return self._idle.wait(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._hurry.clear()
            self._thread = threading.Thread(
                target=self._run, name="timedify-followups", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            due, topic, shop = item
            self._hurry.wait(due - time.monotonic())  # FIFO with one delay: in order of due
            self._wait_while_busy(due + MAX_DEFER_SECONDS)
            key = (topic, shop)
            with self._lock:
                self._pending.discard(key)  # a change arriving from now on is read again
            try:
                self._actions[topic](shop)
                log.info("followup_done", topic=topic, shop=shop)
            except Exception as exc:  # the webhook is applied already; the sync repairs later
                error_class = getattr(exc, "error_class", "followup")
                log.warning(
                    "followup_failed",
                    topic=topic,
                    shop=shop,
                    error_class=error_class,
                    error_type=type(exc).__name__,
                )
            with self._lock:
                if not self._pending:
                    self._idle.set()

    def _wait_while_busy(self, deadline: float) -> None:
        if self._busy is None:
            return
        while self._busy() and not self._hurry.is_set() and time.monotonic() < deadline:
            self._hurry.wait(_BUSY_STEP)


def billing_followups(
    refresh: Action, *, settle: float = SETTLE_SECONDS, busy: Callable[[], bool] | None = None
) -> FollowUps:
    """Re-read a shop's billing state (`Billing.refresh`) after each app_subscriptions/update."""
    return FollowUps({"app_subscriptions/update": refresh}, settle=settle, busy=busy)
