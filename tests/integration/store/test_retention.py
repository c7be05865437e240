"""store.retention: each rule's count and batch agree, and never touch what the policy keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.rows import (
    ComplianceRequest,
    DeadLetter,
    WebhookEvent,
    compliance_row,
    dead_letter_row,
    event_row,
    insert_rows,
)
from timedify.db import make_engine
from timedify.models import EventState
from timedify.store import retention

OLD, CUTOFF = timedelta(days=40), timedelta(days=30)


def test_events_rule_walks_old_finished_events_and_keeps_those_with_a_dead_letter(
    db_url: str,
) -> None:
    old = [event_row(age=OLD) for _ in range(5)]
    waiting = event_row(age=OLD, state=EventState.DEAD)
    recent = event_row(age=timedelta(days=1))
    pending = event_row(age=OLD, state=EventState.RECEIVED)
    pks = insert_rows(db_url, WebhookEvent, [*old, waiting, recent, pending])
    insert_rows(db_url, DeadLetter, [dead_letter_row(pks[5], resolved_age=None)])
    cutoff = datetime.now(UTC) - CUTOFF
    engine = make_engine(db_url)
    keyset = retention.Keyset()
    with engine.begin() as conn:
        assert retention.count_events(conn, cutoff) == 5
    for expected in (3, 2, 0):
        with engine.begin() as conn:
            assert retention.delete_events(conn, cutoff, 3, keyset) == expected
    with engine.begin() as conn:
        assert retention.count_events(conn, cutoff) == 0
    engine.dispose()


def test_dead_letter_and_report_rules(db_url: str) -> None:
    pks = insert_rows(db_url, WebhookEvent, [event_row(age=OLD) for _ in range(2)])
    insert_rows(
        db_url,
        DeadLetter,
        [dead_letter_row(pks[0], resolved_age=OLD), dead_letter_row(pks[1], resolved_age=None)],
    )
    insert_rows(
        db_url,
        ComplianceRequest,
        [
            compliance_row(deadline_in=-OLD, completed_age=OLD, report="{}"),
            compliance_row(deadline_in=timedelta(days=5), report="{}"),
        ],
    )
    cutoff = datetime.now(UTC) - CUTOFF
    engine = make_engine(db_url)
    with engine.begin() as conn:
        assert retention.count_dead_letters(conn, cutoff) == 1
        assert retention.count_compliance_reports(conn, cutoff) == 1
        assert retention.delete_dead_letters(conn, cutoff, 10) == 1
        assert retention.clear_compliance_reports(conn, cutoff, 10) == 1
        assert retention.count_dead_letters(conn, cutoff) == 0
        assert retention.count_compliance_reports(conn, cutoff) == 0
    engine.dispose()
