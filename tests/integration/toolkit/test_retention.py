"""O5: retention deletes exactly the old finished rows, in batches, while webhooks keep flowing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, bindparam, event, func, select, text

from tests.support.databases import fresh_database
from tests.support.helpers import table_rows
from tests.support.rows import (
    ComplianceRequest,
    DeadLetter,
    WebhookEvent,
    compliance_row,
    dead_letter_row,
    event_row,
    insert_rows,
)
from tests.support.servers import threaded_server
from tests.support.settings import SHOP, make_settings
from timedify.db import make_engine
from timedify.models import EventAttempt, EventState, UTCDateTime
from timedify.store import retention as retention_store
from timedify.testing import signed_webhook
from timedify.toolkit import retention

OLD, YOUNG = timedelta(days=40), timedelta(days=5)


def _seed(db_url: str, old_processed: int) -> dict[str, list[int]]:
    """A history where every row's fate is known in advance."""
    doomed = insert_rows(db_url, WebhookEvent, [event_row(age=OLD) for _ in range(old_processed)])
    doomed += insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(age=OLD, state=EventState.IGNORED),
            event_row(age=OLD, state=EventState.RECEIVED, synthetic=True),
        ],
    )
    kept = insert_rows(
        db_url,
        WebhookEvent,
        [
            event_row(age=YOUNG),
            event_row(age=OLD, state=EventState.RECEIVED),
            event_row(age=OLD, state=EventState.RETRYING),
            event_row(age=OLD, state=EventState.PROCESSING),
            event_row(age=OLD, state=EventState.DEAD),  # unresolved dead letter below
            event_row(age=OLD, state=EventState.DEAD),  # recently resolved dead letter below
        ],
    )
    old_resolved_event = insert_rows(
        db_url, WebhookEvent, [event_row(age=OLD, state=EventState.DEAD)]
    )
    letters = insert_rows(
        db_url,
        DeadLetter,
        [
            dead_letter_row(kept[4], resolved_age=None),
            dead_letter_row(kept[5], resolved_age=timedelta(days=3)),
            dead_letter_row(old_resolved_event[0], resolved_age=timedelta(days=45)),
        ],
    )
    insert_rows(
        db_url,
        EventAttempt,
        [
            {"event_pk": pk, "attempt": 1, "started_at": datetime.now(UTC) - OLD,
             "finished_at": datetime.now(UTC) - OLD, "outcome": "processed"}
            for pk in (doomed[0], kept[0])
        ],
    )  # fmt: skip
    reports = insert_rows(
        db_url,
        ComplianceRequest,
        [
            compliance_row(deadline_in=-OLD, completed_age=OLD, report='{"orders": [1]}'),
            compliance_row(
                deadline_in=timedelta(days=1), completed_age=YOUNG, report='{"orders": [2]}'
            ),
            compliance_row(deadline_in=timedelta(days=20)),
        ],
    )
    return {
        "doomed": doomed + old_resolved_event,
        "kept": kept,
        "letters": letters,
        "reports": reports,
    }


def test_retention_deletes_exactly_the_right_rows(db_url: str) -> None:
    seeded = _seed(db_url, old_processed=25)
    engine = make_engine(db_url)
    policy = retention.Policy(days=30, dead_letter_days=30, compliance_days=30, batch_size=7)
    now = datetime.now(UTC)
    try:
        with engine.connect() as conn:
            planned = retention.plan(conn, policy, now)
        assert planned.values == {"dead_letters": 1, "events": 27, "compliance_reports": 1}
        batches: list[tuple[str, int]] = []
        counts = retention.run(engine, policy, now, lambda rule, n: batches.append((rule, n)))
    finally:
        engine.dispose()
    # The event freed by the deleted dead letter goes in the same run.
    assert counts.values == {"dead_letters": 1, "events": 28, "compliance_reports": 1}
    assert max(n for _rule, n in batches) <= 7
    remaining = {row["id"] for row in table_rows(db_url, WebhookEvent)}
    assert remaining == set(seeded["kept"])
    assert [r["event_pk"] for r in table_rows(db_url, EventAttempt)] == [seeded["kept"][0]]
    assert [r["id"] for r in table_rows(db_url, DeadLetter)] == seeded["letters"][:2]
    reports = {r["id"]: r["report"] for r in table_rows(db_url, ComplianceRequest)}
    assert reports == {
        seeded["reports"][0]: None,
        seeded["reports"][1]: '{"orders": [2]}',
        seeded["reports"][2]: None,
    }


def test_retention_keeps_acknowledging_webhooks(db_url: str, tmp_path: Path) -> None:
    """Tens of thousands of rows deleted in batches while signed webhooks keep getting 200."""
    total = 30_000
    insert_rows(db_url, WebhookEvent, [event_row(age=OLD) for _ in range(total)])
    settings = make_settings(db_url, tmp_path)
    statuses: list[int] = []
    done = threading.Event()
    with threaded_server(settings) as (url, _app):
        engine = make_engine(db_url)
        sender = threading.Thread(target=lambda: _send_loop(url, statuses, done))
        sender.start()
        try:
            counts = retention.run(
                engine, retention.Policy(days=30, batch_size=1000), datetime.now(UTC)
            )
        finally:
            done.set()
            sender.join(30)
            engine.dispose()
    assert counts.values["events"] == total
    assert statuses, "no webhook was sent during the cleanup"
    assert set(statuses) == {200}
    engine = make_engine(db_url)
    with engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()
    engine.dispose()
    assert left == len(statuses)


def _send_loop(url: str, statuses: list[int], done: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not done.is_set():
            hook = signed_webhook("app/uninstalled", SHOP, "test-secret-0123456789-abcdefghij")
            response = client.post(url + hook.path(), content=hook.body, headers=hook.headers)
            statuses.append(response.status_code)


def test_events_held_back_by_dead_letters_do_not_stop_the_walk(db_url: str) -> None:
    """Old dead events with an open dead letter, spread between deletable ones, stay; the rest go.

    Small batches make the walk along the retention index pass kept rows many times.
    """
    states = [EventState.DEAD if i % 3 == 0 else EventState.PROCESSED for i in range(40)]
    ids = insert_rows(db_url, WebhookEvent, [event_row(age=OLD, state=s) for s in states])
    held = [pk for pk, state in zip(ids, states, strict=True) if state == EventState.DEAD]
    insert_rows(db_url, DeadLetter, [dead_letter_row(pk, resolved_age=None) for pk in held])
    engine = make_engine(db_url)
    try:
        policy = retention.Policy(days=30, batch_size=4)
        counts = retention.run(engine, policy, datetime.now(UTC))
    finally:
        engine.dispose()
    assert counts.values["events"] == len(ids) - len(held)
    assert sorted(row["id"] for row in table_rows(db_url, WebhookEvent)) == held
    assert len(table_rows(db_url, DeadLetter)) == len(held)


def test_old_synthetic_events_go_with_their_dead_letters_and_attempts(db_url: str) -> None:
    """Smoke-test leftovers go after `days` in any state, an unresolved dead letter included."""
    ids = insert_rows(
        db_url, WebhookEvent, [event_row(age=OLD, state=EventState.DEAD, synthetic=True)]
    )
    insert_rows(db_url, DeadLetter, [dead_letter_row(ids[0], resolved_age=None)])
    at = datetime.now(UTC) - OLD
    insert_rows(
        db_url,
        EventAttempt,
        [{"event_pk": ids[0], "attempt": n, "started_at": at, "finished_at": at,
          "outcome": "failed"} for n in (1, 2)],
    )  # fmt: skip
    engine = make_engine(db_url)
    try:
        counts = retention.run(engine, retention.Policy(days=30), datetime.now(UTC))
    finally:
        engine.dispose()
    assert counts.values["events"] == 1
    assert counts.values["dead_letters"] == 0  # not a resolved one: it went with its event
    for model in (WebhookEvent, DeadLetter, EventAttempt):
        assert table_rows(db_url, model) == []


@pytest.mark.parametrize("duty", [None, 0.5])
def test_a_cleanup_pauses_between_batches_where_the_database_needs_it(
    db_url: str, duty: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the service's commits need the write lock between batches, so by default the
    cleanup pauses. PostgreSQL's row locks never hold an ingest commit back: no pause unless
    `duty` asks for one."""
    insert_rows(db_url, WebhookEvent, [event_row(age=OLD) for _ in range(130)])
    pauses: list[float] = []
    pacer = retention.Pacer
    monkeypatch.setattr(
        retention,
        "Pacer",
        lambda target, share, rows: pacer(target, share, rows, sleep=pauses.append),
    )
    engine = make_engine(db_url)
    try:
        policy = retention.Policy(days=30, batch_size=50, duty=duty)
        counts = retention.run(engine, policy, datetime.now(UTC))
    finally:
        engine.dispose()
    assert counts.values["events"] == 130  # in three batches of at most 50
    pausing = duty is not None or db_url.startswith("sqlite")
    assert (len(pauses) >= 2 and all(p > 0 for p in pauses)) if pausing else pauses == []


def test_sqlite_cleanup_finds_old_events_through_the_retention_index(sqlite_url: str) -> None:
    """Finding the next batch is an index range, never a scan of the table."""
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + retention_store.NEXT_EVENTS,
                {"cutoff": "2026-01-01", "after_at": "", "after_id": 0, "rows": 10},
            ).all()
    finally:
        engine.dispose()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_webhook_events_retention" in details
    assert "SCAN e" not in details


def test_sqlite_connection_settings_are_put_back_after_a_run(sqlite_url: str) -> None:
    """The bulk settings (no fsync per commit, no auto-checkpoint) end with the run."""
    insert_rows(sqlite_url, WebhookEvent, [event_row(age=OLD) for _ in range(3)])
    engine = make_engine(sqlite_url, pool_size=1)
    pragmas = ("synchronous", "wal_autocheckpoint", "cache_size", "foreign_keys")
    try:
        with engine.connect() as conn:
            before = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in pragmas}
        retention.run(engine, retention.Policy(days=30), datetime.now(UTC))
        with engine.connect() as conn:
            after = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in pragmas}
    finally:
        engine.dispose()
    assert after == before
    assert before["synchronous"] == 2  # FULL, as every service connection


def test_postgres_batches_follow_the_retention_index_without_statistics(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Rows bulk-loaded since the last ANALYZE: a batch is still a walk along the index.

    Planned from default selectivities, PostgreSQL would scan and sort the whole old range for
    every batch (~90 ms each with 200,000 old events).
    """
    engine = _postgres_with_old_events(request, tmp_path, 30)
    now = datetime.now(UTC)
    batch = text(
        "EXPLAIN " + retention_store.PG_BATCH.format(select=retention_store.NEXT_EVENTS)
    ).bindparams(
        bindparam("cutoff", now - timedelta(days=30), type_=UTCDateTime()),
        bindparam("after_at", now - OLD - timedelta(days=1), type_=UTCDateTime()),
        rows=400,
        after_id=0,
    )
    estimate = text("SELECT reltuples FROM pg_class WHERE relname = 'webhook_events'")
    try:
        with engine.connect() as conn, conn.begin():
            never_analyzed = conn.execute(estimate).scalar_one() < 0
            conn.execute(retention_store.PG_SETTINGS)
            plan = "\n".join(conn.execute(batch).scalars())
    finally:
        engine.dispose()
    assert never_analyzed
    _assert_walks_the_index(plan)


def test_postgres_batches_follow_the_retention_index_in_their_generic_plan(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """psycopg prepares a statement on its sixth run; PostgreSQL may then plan it once for any
    parameters, and that plan sorted the whole old range (a cleanup of 1,000,000 events fell to
    ~80 rows/s after its first 80,000)."""
    engine = _postgres_with_old_events(request, tmp_path, 3000)
    sql = retention_store.PG_BATCH.format(select=retention_store.NEXT_EVENTS)
    for number, name in enumerate(("cutoff", "after_at", "after_id", "rows"), start=1):
        sql = sql.replace(f":{name}", f"${number}")
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("ANALYZE webhook_events"))
            conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            conn.execute(retention_store.PG_SETTINGS)
            conn.exec_driver_sql(f"PREPARE batch (timestamp, timestamp, bigint, integer) AS {sql}")
            explain = "EXPLAIN EXECUTE batch ('2026-01-01', '2025-01-01', 0, 400)"
            plan = "\n".join(conn.exec_driver_sql(explain).scalars())
    finally:
        engine.dispose()
    assert "$1" in plan, plan  # the generic plan: the parameters are not in it as values
    _assert_walks_the_index(plan)


def test_postgres_cleanup_plans_every_batch_with_those_settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The plan tests above set the settings themselves: here the real run must, every batch."""
    engine = _postgres_with_old_events(request, tmp_path, 25)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2].lstrip()))
    try:
        counts = retention.run(engine, retention.Policy(days=30, batch_size=10), datetime.now(UTC))
    finally:
        engine.dispose()
    assert counts.values["events"] == 25
    batches = [i for i, sql in enumerate(statements) if sql.startswith("WITH batch AS")]
    assert len(batches) >= 3  # 10 + 10 + 5 rows
    assert all(statements[i - 1] == str(retention_store.PG_SETTINGS) for i in batches)


def _postgres_with_old_events(request: pytest.FixtureRequest, tmp_path: Path, count: int) -> Engine:
    """A fresh PostgreSQL database holding `count` old processed events: its engine."""
    db_url = fresh_database("postgresql", request, tmp_path)
    insert_rows(db_url, WebhookEvent, [event_row(age=OLD) for _ in range(count)])
    return make_engine(db_url)


def _assert_walks_the_index(plan: str) -> None:
    # Either (received_at, id) index is the walk: the partial retention one, or the console's
    # full one (migration 0007), whose extra entries are the few unfinished events.
    assert any(
        f"Index Scan using {name} on webhook_events e" in plan
        for name in ("ix_webhook_events_retention", "ix_webhook_events_received")
    ), plan
    # The one sort left orders the batch's own rows, to report where the walk got to.
    assert [line.strip() for line in plan.splitlines() if "Sort Key" in line] == [
        "Sort Key: batch.received_at DESC, batch.id DESC"
    ], plan


def test_postgres_cleanup_does_not_wait_behind_a_vacuum(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The lock a (anti-wraparound) VACUUM holds for hours never holds a cleanup back."""
    engine = _postgres_with_old_events(request, tmp_path, 10)
    counts: list[retention.Counts] = []
    try:
        with engine.connect() as vacuum:
            vacuum.execute(text("LOCK TABLE webhook_events IN SHARE UPDATE EXCLUSIVE MODE"))
            cleanup = threading.Thread(
                target=lambda: counts.append(
                    retention.run(engine, retention.Policy(days=30), datetime.now(UTC))
                ),
                daemon=True,
            )
            cleanup.start()
            cleanup.join(20)
            finished_under_the_lock = not cleanup.is_alive()
            vacuum.rollback()
        cleanup.join(30)
    finally:
        engine.dispose()
    assert finished_under_the_lock, "the cleanup waited for the lock"
    assert counts[0].values["events"] == 10
