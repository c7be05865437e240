"""records: the outcome of an attempt is one of a closed set, and says whether it finished."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from timedify.models import EventState
from timedify.records import AttemptResult, ClaimedEvent


def test_finished_results_are_exactly_processed_and_ignored() -> None:
    finished = {r for r in AttemptResult if r.finished}
    assert finished == {AttemptResult.PROCESSED, AttemptResult.IGNORED}


def test_every_event_state_an_attempt_can_end_in_is_a_result() -> None:
    for state in (EventState.PROCESSED, EventState.IGNORED, EventState.RETRYING, EventState.DEAD):
        assert AttemptResult(state) == state
    with pytest.raises(ValueError, match="processing"):
        AttemptResult(EventState.PROCESSING)


@pytest.mark.parametrize(("event_id", "key"), [("evt-1", "evt-1"), (None, "wh-1")])
def test_event_key_is_the_event_id_else_the_webhook_id(event_id: str | None, key: str) -> None:
    now = datetime.now(UTC)
    event = ClaimedEvent(1, "wh-1", "app/uninstalled", "s.myshopify.com", event_id, now, now,
                         b"{}", 0, "token")  # fmt: skip
    assert event.event_key == key
