"""store.console: the console's keyset pages, one event, the chart's series, compliance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.support.rows import (
    ComplianceRequest,
    WebhookEvent,
    compliance_row,
    event_row,
    insert_rows,
)
from timedify.db import make_engine
from timedify.models import DeadLetter, EventAttempt, EventState
from timedify.store import console

NOW = datetime.now(UTC)


def _events(db_url: str, rows: list[dict[str, object]]) -> list[int]:
    return insert_rows(db_url, WebhookEvent, rows)


def _all_pages(db_url: str, filters: console.EventFilters, size: int) -> list[list[int]]:
    engine = make_engine(db_url)
    pages: list[list[int]] = []
    before = None
    try:
        with engine.connect() as conn:
            while True:
                rows = console.list_events(conn, filters, before=before, limit=size)
                if not rows:
                    return pages
                pages.append([r.id for r in rows])
                before = rows[-1].cursor
    finally:
        engine.dispose()


def test_keyset_pages_list_every_event_once_newest_first(db_url: str) -> None:
    """Pages follow (received_at, id) descending; events received at the same instant (ties)
    are neither repeated nor skipped across a page boundary."""
    same = event_row(age=timedelta(minutes=5))
    rows = [event_row(age=timedelta(minutes=m)) for m in range(20)]
    rows += [{**same, "webhook_id": f"tie-{i}"} for i in range(7)]
    ids = _events(db_url, rows)
    pages = _all_pages(db_url, console.EventFilters(), size=4)
    listed = [pk for page in pages for pk in page]
    assert sorted(listed) == sorted(ids)
    assert len(listed) == len(set(listed))
    engine = make_engine(db_url)
    with engine.connect() as conn:
        order = conn.execute(
            text("SELECT id FROM webhook_events ORDER BY received_at DESC, id DESC")
        ).scalars()
        assert listed == list(order)
    engine.dispose()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (console.EventFilters(topic="customers/redact"), {"redact-a", "redact-b-dead"}),
        (console.EventFilters(shop="b.myshopify.com"), {"redact-b-dead", "uninstall-b"}),
        (console.EventFilters(state=EventState.DEAD), {"redact-b-dead"}),
        (console.EventFilters(state=EventState.PROCESSED), {"redact-a", "uninstall-b"}),
        (console.EventFilters(since=NOW - timedelta(hours=2)), {"redact-a", "uninstall-b"}),
        (
            console.EventFilters(topic="customers/redact", shop="b.myshopify.com"),
            {"redact-b-dead"},
        ),
    ],
)
def test_filters(db_url: str, filters: console.EventFilters, expected: set[str]) -> None:
    """Topic, shop, state (rare or common) and since, alone and together."""
    rows = [
        {
            **event_row(age=timedelta(hours=1), topic="customers/redact", shop="a.myshopify.com"),
            "webhook_id": "redact-a",
        },
        {
            **event_row(
                age=timedelta(hours=3),
                topic="customers/redact",
                shop="b.myshopify.com",
                state=EventState.DEAD,
            ),
            "webhook_id": "redact-b-dead",
        },
        {
            **event_row(age=timedelta(minutes=1), shop="b.myshopify.com"),
            "webhook_id": "uninstall-b",
        },
    ]
    _events(db_url, rows)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        found = {r.webhook_id for r in console.list_events(conn, filters)}
    engine.dispose()
    assert found == expected


def test_get_event_with_attempts_and_dead_letter(db_url: str) -> None:
    [pk] = _events(db_url, [event_row(age=timedelta(minutes=3), state=EventState.DEAD)])
    at = NOW - timedelta(minutes=2)
    attempt = {"event_pk": pk, "started_at": at, "finished_at": at, "error_class": "Boom"}
    insert_rows(
        db_url,
        EventAttempt,
        [
            {**attempt, "attempt": 1, "outcome": "retrying", "error": "first"},
            {**attempt, "attempt": 2, "outcome": "dead", "error": "second"},
        ],
    )
    [dead] = insert_rows(
        db_url,
        DeadLetter,
        [
            {
                "event_pk": pk,
                "topic": "app/uninstalled",
                "shop_domain": "demo-shop.myshopify.com",
                "error": "second",
                "attempts": 2,
                "first_failed_at": at,
                "last_failed_at": at,
            }
        ],
    )
    engine = make_engine(db_url)
    with engine.connect() as conn:
        detail = console.get_event(conn, pk)
        missing = console.get_event(conn, pk + 1000)
    engine.dispose()
    assert missing is None
    assert detail is not None
    assert detail.dead_letter_id == dead
    assert [(a["attempt"], a["outcome"], a["error"]) for a in detail.attempt_log] == [
        (1, "retrying", "first"),
        (2, "dead", "second"),
    ]
    assert detail.payload == b'{"id": 1}'


def test_activity_series_counts_per_bucket(db_url: str) -> None:
    """Received events by receipt, processed and failed attempts by their end, summed per
    5-minute bucket; synthetic and older ones left out."""
    bucket = (int(NOW.timestamp()) - 900) // 300 * 300
    start = datetime.fromtimestamp(bucket, UTC)
    recent = event_row(age=timedelta(0))
    rows = [
        {**recent, "webhook_id": f"r{i}", "received_at": start + timedelta(seconds=10 * i + 1)}
        for i in range(3)
    ]
    rows += [
        event_row(age=timedelta(hours=30)),
        {**event_row(age=timedelta(0), synthetic=True), "received_at": start},
    ]
    ids = _events(db_url, rows)
    base = {"attempt": 1}
    at = [start + timedelta(seconds=s) for s in (5, 250, 299)]
    insert_rows(
        db_url,
        EventAttempt,
        [
            {
                **base,
                "event_pk": ids[0],
                "outcome": "processed",
                "started_at": at[0],
                "finished_at": at[0],
            },
            {
                **base,
                "event_pk": ids[1],
                "outcome": "retrying",
                "started_at": at[1],
                "finished_at": at[1],
            },
            {
                **base,
                "event_pk": ids[2],
                "outcome": "processed",
                "started_at": at[2],
                "finished_at": at[2],
            },
            {
                **base,
                "event_pk": ids[4],
                "outcome": "processed",
                "started_at": at[0],
                "finished_at": at[0],
            },
        ],
    )
    engine = make_engine(db_url)
    with engine.connect() as conn:
        series = console.activity_series(conn, NOW - timedelta(hours=24), 300)
    engine.dispose()
    assert series == {"received": {bucket: 3}, "processed": {bucket: 2}, "failed": {bucket: 1}}


def test_compliance_lists(db_url: str) -> None:
    """Recorded requests by deadline; unapplied compliance webhooks with a deadline from receipt."""
    insert_rows(
        db_url,
        ComplianceRequest,
        [
            compliance_row(
                deadline_in=timedelta(days=20),
                completed_age=timedelta(days=1),
                report='{"customer_records": 0}',
            ),
            compliance_row(deadline_in=timedelta(days=10), completed_age=timedelta(days=2)),
        ],
    )
    _events(
        db_url,
        [
            event_row(age=timedelta(days=29), topic="customers/redact", state=EventState.DEAD),
            event_row(age=timedelta(days=1), topic="shop/redact", state=EventState.RECEIVED),
            event_row(age=timedelta(days=1), topic="customers/redact"),  # processed: applied
            event_row(age=timedelta(days=1), topic="app/uninstalled", state=EventState.RECEIVED),
        ],
    )
    engine = make_engine(db_url)
    with engine.connect() as conn:
        recorded = console.compliance_requests(conn)
        waiting = console.unapplied_compliance(conn, timedelta(days=30))
    engine.dispose()
    assert [r.deadline_at < recorded[1].deadline_at for r in recorded[:1]] == [True]
    assert recorded[1].evidence == '{"customer_records": 0}'
    assert [(w.kind, w.status) for w in waiting] == [
        ("customers/redact", "not applied (dead)"),
        ("shop/redact", "not applied (received)"),
    ]
    assert waiting[0].deadline_at == waiting[0].received_at + timedelta(days=30)


@pytest.mark.parametrize(
    "filters",
    [
        console.EventFilters(),
        console.EventFilters(topic="app/uninstalled"),
        console.EventFilters(shop="a.myshopify.com"),
        console.EventFilters(state=EventState.DEAD),
        console.EventFilters(state=EventState.PROCESSED),
        console.EventFilters(topic="app/uninstalled", shop="a.myshopify.com"),
        console.EventFilters(topic="app/uninstalled", state=EventState.DEAD),
        console.EventFilters(topic="app/uninstalled", state=EventState.PROCESSED),
    ],
)
def test_sqlite_pages_walk_an_index_without_sorting(
    sqlite_url: str, filters: console.EventFilters
) -> None:
    """The plan of a deep page: an index range in the page's order, no table scan, no sort
    (the shape that keeps a page as fast on a million events as on a hundred)."""
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        stmt = console.list_events_statement(filters, before=(NOW, 10**9), limit=51)
        compiled = stmt.compile(dialect=conn.dialect)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        plan = " | ".join(str(r[-1]) for r in rows)
    engine.dispose()
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    expected = (
        "shop_received"
        if filters.shop
        else "state_received"
        if filters.state == EventState.DEAD
        else "topic_received"
        if filters.topic
        else "ix_webhook_events_received"
    )
    assert expected in plan, plan
