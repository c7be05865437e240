"""P2/W3: a claimed batch applied in one transaction, on SQLite and PostgreSQL.

A batch runs optimistically without a savepoint per event; when an event fails, the batch
rolls back and runs again one savepoint per event. Whichever way it went, each event must end
as if it had been applied alone: a failure rolls back only that event, a lost lease writes
nothing, a merchant action is applied once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select, text, update

from tests.support.batches import in_batches
from tests.support.helpers import events, execute, store_events, table_rows
from timedify.db import make_engine
from timedify.models import AppliedEvent, DeadLetter, EventAttempt, EventState, Shop, WebhookEvent
from timedify.processing import batches
from timedify.processing.batches import DUPLICATE_NOTE
from timedify.processing.handlers import HANDLERS, Handler
from timedify.processing.retry import RetryPolicy
from timedify.records import AttemptResult, ClaimedEvent, Outcome
from timedify.store import appdata, claims
from timedify.testing import signed_webhook

POLICY = RetryPolicy(max_attempts=3, base=60, cap=600)
BAD = "bad-shop.myshopify.com"


def _shop(n: int) -> str:
    return f"shop-{n}.myshopify.com"


def _process(db_url: str, handlers: dict[str, Handler], *, limit: int = 50) -> list[Outcome]:
    return in_batches(db_url, POLICY, handlers, limit=limit)


def _uninstall_then(fail: str) -> Handler:
    """app/uninstalled that writes first and then fails for one shop (a Python error, or a
    database error that aborts a PostgreSQL transaction)."""

    def handler(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
        note = HANDLERS["app/uninstalled"](conn, event, now)
        if event.shop_domain == BAD:
            if fail == "database":
                conn.execute(text("SELECT * FROM no_such_table"))
            raise RuntimeError("handler bug")
        return note

    return handler


def test_one_failing_event_of_many_rolls_back_alone(db_url: str) -> None:
    """The failing event's writes roll back and it gets one attempt record and a retry; every
    other event of the batch is applied once, with one attempt record each."""
    for fail in ("python", "database"):
        shops = [_shop(n) for n in range(3)] + [BAD] + [_shop(n) for n in range(3, 6)]
        store_events(db_url, [signed_webhook("app/uninstalled", s, "x") for s in shops])
        handlers = {**HANDLERS, "app/uninstalled": _uninstall_then(fail)}

        outcomes = _process(db_url, handlers)

        assert Counter(o.state for o in outcomes) == {"processed": 6, "retrying": 1}
        by_shop = {e["shop_domain"]: e for e in events(db_url)}
        assert by_shop[BAD]["state"] == EventState.RETRYING
        expected = ("RuntimeError",) if fail == "python" else ("Operational", "Programming")
        assert by_shop[BAD]["last_error"].startswith(expected)
        assert {by_shop[s]["state"] for s in shops if s != BAD} == {EventState.PROCESSED}
        assert BAD not in {s["domain"] for s in table_rows(db_url, Shop)}
        assert len(table_rows(db_url, Shop)) == 6
        ledger = {row["event_pk"] for row in table_rows(db_url, AppliedEvent)}
        assert by_shop[BAD]["id"] not in ledger
        attempts = Counter(a["event_pk"] for a in table_rows(db_url, EventAttempt))
        assert set(attempts.values()) == {1}
        assert len(attempts) == 7
        execute(db_url, WebhookEvent.__table__.delete())
        execute(db_url, AppliedEvent.__table__.delete())
        execute(db_url, Shop.__table__.delete())


def test_a_lease_lost_to_another_worker_writes_nothing_for_that_event(db_url: str) -> None:
    """An event of the batch that another worker took over (our lease expired) is `lost`:
    no ledger entry, no attempt, no change to the event; the rest of the batch is applied."""
    shops = [_shop(n) for n in range(5)]
    store_events(db_url, [signed_webhook("app/uninstalled", s, "x") for s in shops])
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            batch = claims.claim(
                conn, token="a", limit=10, lease=timedelta(seconds=60), now=datetime.now(UTC)
            )
        taken = batch[2]
        with engine.begin() as conn:  # worker B re-claimed it after A's lease ran out
            conn.execute(
                update(WebhookEvent).where(WebhookEvent.id == taken.id).values(lease_token="b")
            )
        outcomes = batches.process_batch(engine, batch, policy=POLICY, max_seconds=60)
    finally:
        engine.dispose()
    P, LOST = AttemptResult.PROCESSED, AttemptResult.LOST
    assert [o.state for o in outcomes] == [P] * 2 + [LOST] + [P] * 2
    [row] = [e for e in events(db_url) if e["id"] == taken.id]
    assert (row["state"], row["lease_token"], row["processed_at"]) == ("processing", "b", None)
    assert taken.id not in {a["event_pk"] for a in table_rows(db_url, EventAttempt)}
    assert taken.id not in {a["event_pk"] for a in table_rows(db_url, AppliedEvent)}
    assert taken.shop_domain not in {s["domain"] for s in table_rows(db_url, Shop)}


def test_a_batch_transaction_takes_events_for_20_ms_and_hands_back_the_rest(db_url: str) -> None:
    """The bound keeps SQLite's write lock (webhook commits wait for it) and PostgreSQL's row
    locks short; a clock advancing 7 ms per reading counts the events exactly."""
    store_events(db_url, [signed_webhook("app/uninstalled", _shop(n), "x") for n in range(6)])
    engine = make_engine(db_url)
    readings = itertools.count(0.0, 0.007)
    try:
        with engine.begin() as conn:
            batch = claims.claim(
                conn, token="a", limit=10, lease=timedelta(seconds=60), now=datetime.now(UTC)
            )
        first = batches.process_batch(
            engine, batch, policy=POLICY, monotonic=lambda: next(readings)
        )
        processed = sum(e["state"] == EventState.PROCESSED for e in events(db_url))
        rest = batches.process_batch(
            engine, batch[len(first) :], policy=POLICY, monotonic=lambda: next(readings)
        )
    finally:
        engine.dispose()
    # Read at 0, then before the 2nd (7 ms), 3rd (14 ms) and 4th event (21 ms: past 20 ms).
    assert [o.state for o in first] == ["processed"] * 3
    assert processed == 3, "what the bound cut off was not written"
    assert [o.state for o in rest] == ["processed"] * 3
    assert {e["state"] for e in events(db_url)} == {EventState.PROCESSED}


def test_the_savepoint_rerun_after_a_failure_has_its_own_20_ms_bound(db_url: str) -> None:
    """After an event fails, the events up to it run again one savepoint each in a new
    transaction: that one holds the write lock too, so it is bounded from its own start. The
    clock advances 3 ms per reading until the failure, then 7 ms."""
    shops = [_shop(n) for n in range(5)] + [BAD]
    store_events(db_url, [signed_webhook("app/uninstalled", s, "x") for s in shops])
    step, now = [0.003], [0.0]

    def monotonic() -> float:
        now[0] += step[0]
        return now[0]

    def fail_for_bad(conn: Connection, event: ClaimedEvent, at: datetime) -> str | None:
        if event.shop_domain == BAD:
            step[0] = 0.007
            raise RuntimeError("boom")
        return HANDLERS["app/uninstalled"](conn, event, at)

    handlers = {**HANDLERS, "app/uninstalled": fail_for_bad}
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            batch = claims.claim(
                conn, token="a", limit=10, lease=timedelta(seconds=60), now=datetime.now(UTC)
            )
        first = batches.process_batch(
            engine, batch, policy=POLICY, handlers=handlers, monotonic=monotonic
        )
        after_first = {e["shop_domain"]: e["state"] for e in events(db_url)}
        rest = batches.process_batch(
            engine, batch[len(first) :], policy=POLICY, handlers=handlers, monotonic=monotonic
        )
    finally:
        engine.dispose()
    # The optimistic run began at 3 ms and reached the failing sixth event at 18 ms. The rerun
    # began at 25 ms and read 32, 39 and 46 ms before its 2nd, 3rd and 4th event: three, then
    # back (measured from the first transaction's start it would have stopped after one).
    assert [o.state for o in first] == ["processed"] * 3
    assert list(after_first.values()).count(EventState.PROCESSED) == 3
    assert after_first[BAD] == EventState.PROCESSING, "the failing event was not handed back"
    assert [o.state for o in rest] == ["processed", "processed", "retrying"]
    by_shop = {e["shop_domain"]: e for e in events(db_url)}
    assert by_shop[BAD]["state"] == EventState.RETRYING
    assert len(table_rows(db_url, EventAttempt)) == 6


def test_a_lease_found_lost_when_marking_done_rolls_the_event_back(db_url: str) -> None:
    """If marking the batch done finds an event no longer ours, nothing of the batch is kept
    as it was: the batch runs again one event at a time and only that event is lost."""
    shops = [_shop(n) for n in range(3)] + [BAD]
    store_events(db_url, [signed_webhook("app/uninstalled", s, "x") for s in shops])

    def steal(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
        note = HANDLERS["app/uninstalled"](conn, event, now)
        if event.shop_domain == BAD:  # as if another worker had taken the row meanwhile
            e = WebhookEvent
            conn.execute(update(e).where(e.id == event.id).values(lease_token="other"))
        return note

    outcomes = _process(db_url, {**HANDLERS, "app/uninstalled": steal})

    assert Counter(o.state for o in outcomes) == {AttemptResult.PROCESSED: 3, AttemptResult.LOST: 1}
    by_shop = {e["shop_domain"]: e for e in events(db_url)}
    assert (by_shop[BAD]["state"], by_shop[BAD]["lease_token"]) == ("processing", "t")
    assert BAD not in {s["domain"] for s in table_rows(db_url, Shop)}
    assert len(table_rows(db_url, EventAttempt)) == 3


def test_the_same_merchant_action_twice_in_one_batch_is_applied_once(db_url: str) -> None:
    """W3 within a batch: the first delivery (in P5 order) applies, the second is ignored."""
    first, second = (datetime.now(UTC) - timedelta(minutes=m) for m in (2, 1))
    store_events(
        db_url,
        [
            signed_webhook("app/uninstalled", _shop(1), "x", event_id="e-1", triggered_at=second),
            signed_webhook("app/uninstalled", _shop(1), "x", event_id="e-1", triggered_at=first),
            signed_webhook("app/uninstalled", _shop(2), "x", event_id="e-2"),
        ],
    )
    outcomes = _process(db_url, dict(HANDLERS))
    assert [(o.state, o.note) for o in outcomes] == [
        ("processed", None),
        ("ignored", DUPLICATE_NOTE),
        ("processed", None),
    ]
    rows = table_rows(db_url, AppliedEvent)
    assert sorted(r["event_key"] for r in rows) == ["e-1", "e-2"]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        shop = appdata.get_shop(conn, _shop(1))
        ids = conn.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id)).all()
    engine.dispose()
    assert shop is not None
    assert shop["uninstalled_at"] == first  # the earlier action, applied first
    assert {r["event_pk"] for r in rows} == {ids[1], ids[2]}


def test_a_dead_letters_stack_shows_the_handlers_error_not_the_batch_machinery(
    db_url: str,
) -> None:
    """The failing event runs again in the per-event path; its recorded stack is the
    handler's own, without the batch's internal signal chained to it."""
    store_events(db_url, [signed_webhook("app/uninstalled", BAD, "x")])

    def fails(conn: Connection, event: ClaimedEvent, now: datetime) -> str | None:
        raise RuntimeError("the handler's own error")

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            batch = claims.claim(
                conn, token="t", limit=1, lease=timedelta(seconds=60), now=datetime.now(UTC)
            )
        (outcome,) = batches.process_batch(
            engine, batch, policy=RetryPolicy(max_attempts=1), handlers={"app/uninstalled": fails}
        )
    finally:
        engine.dispose()
    assert outcome.state == AttemptResult.DEAD
    (letter,) = table_rows(db_url, DeadLetter)
    assert "the handler's own error" in letter["stack"]
    assert "_Failed" not in letter["stack"]
    assert "During handling" not in letter["stack"]
