"""The records that cross the layers: an event a worker holds, and what became of one attempt.

The store returns and takes them; processing and the handlers work with them. Kept out of the SQL
module so that a handler depends on what an event is, not on how it is claimed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from timedify.models import EventState


@dataclass(frozen=True)
class ClaimedEvent:
    """An event this worker holds a lease on, with what its handler needs."""

    id: int
    webhook_id: str
    topic: str
    shop_domain: str
    event_id: str | None
    triggered_at: datetime | None
    received_at: datetime
    payload: bytes
    attempts: int
    lease_token: str

    @property
    def event_key(self) -> str:
        """The merchant action's identity: the event id, else this delivery's webhook id (W3)."""
        return self.event_id or self.webhook_id


@dataclass(frozen=True)
class Done:
    """An event applied (or deliberately ignored) in this transaction, not yet marked so."""

    event: ClaimedEvent
    state: EventState
    note: str | None
    started: datetime
    finished: datetime


class AttemptResult(enum.StrEnum):
    """What became of one attempt at applying an event."""

    PROCESSED = EventState.PROCESSED.value
    IGNORED = EventState.IGNORED.value
    RETRYING = EventState.RETRYING.value
    DEAD = EventState.DEAD.value
    # Another worker holds the event now (our lease expired): nothing was written.
    LOST = "lost"

    @property
    def finished(self) -> bool:
        """Applied or deliberately ignored: nothing more will happen to the event."""
        return self in (AttemptResult.PROCESSED, AttemptResult.IGNORED)


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt, with the note or error that explains it."""

    state: AttemptResult
    note: str | None = None
    error_class: str | None = None
    error: str | None = None
