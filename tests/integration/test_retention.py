"""O5: retention deletes exactly the old finished rows, in batches, while webhooks keep flowing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from tests.conftest import SHOP, make_settings
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
from timedify import retention
from timedify.db import make_engine
from timedify.models import EventAttempt, EventState
from timedify.testing import signed_webhook

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
            hook = signed_webhook("app/uninstalled", SHOP, "test-secret-0123456789")
            response = client.post(url + hook.path(), content=hook.body, headers=hook.headers)
            statuses.append(response.status_code)
