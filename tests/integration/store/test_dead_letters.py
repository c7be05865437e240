"""store.dead_letters: the queries behind `dead-letters` and the console, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.rows import DeadLetter, WebhookEvent, dead_letter_row, event_row, insert_rows
from timedify.db import make_engine
from timedify.models import EventState
from timedify.store import dead_letters


def _dead_letters(db_url: str, *resolved: timedelta | None) -> list[int]:
    events = [event_row(age=timedelta(days=1), state=EventState.DEAD) for _ in resolved]
    pks = insert_rows(db_url, WebhookEvent, events)
    rows = [dead_letter_row(pk, resolved_age=age) for pk, age in zip(pks, resolved, strict=True)]
    return insert_rows(db_url, DeadLetter, rows)


def test_matching_filters_and_leaves_resolved_ones_out_unless_asked(db_url: str) -> None:
    open_id, resolved_id = _dead_letters(db_url, None, timedelta(days=1))
    engine = make_engine(db_url)
    with engine.connect() as conn:
        unresolved = dead_letters.matching(
            conn, topic=None, shop=None, since=None, include_resolved=False
        )
        everything = dead_letters.matching(
            conn, topic=None, shop=None, since=None, include_resolved=True
        )
        other_topic = dead_letters.matching(
            conn, topic="customers/redact", shop=None, since=None, include_resolved=True
        )
        later = dead_letters.matching(
            conn, topic=None, shop=None, since=datetime.now(UTC), include_resolved=True
        )
    engine.dispose()
    assert [row["id"] for row in unresolved] == [open_id]
    assert [row["id"] for row in everything] == [open_id, resolved_id]
    assert other_topic == []
    assert later == []
    assert "payload" not in unresolved[0]  # never the payload in a list


def test_dismiss_resolves_once_and_delete_resolved_removes_only_old_resolved(db_url: str) -> None:
    open_id, old_id = _dead_letters(db_url, None, timedelta(days=40))
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        assert dead_letters.dismiss(conn, open_id, now) is True
        assert dead_letters.dismiss(conn, open_id, now) is False  # already resolved
        assert dead_letters.delete_resolved(conn, now - timedelta(days=30), limit=10) == 1
    with engine.connect() as conn:
        assert dead_letters.one(conn, old_id) is None
        kept = dead_letters.one(conn, open_id)
        assert kept is not None
        assert kept["resolution"] == "dismissed"
        assert dead_letters.replay_target(conn, open_id).resolved_at is not None
        assert dead_letters.attempts(conn, kept["event_pk"]) == []
    engine.dispose()
