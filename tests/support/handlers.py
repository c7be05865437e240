"""Handlers that fail on purpose, for the tests of retries and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from timedify.processing.handlers import HANDLERS, Handler
from timedify.records import ClaimedEvent

EMAIL = "john@example.com"


class Broken(Exception):
    pass


def broken(_conn: Connection, _event: ClaimedEvent, _now: datetime) -> str | None:
    # The message quotes a payload value, as careless exceptions do: it must not be stored.
    raise Broken(f"cannot handle customer {EMAIL}")


BROKEN: Mapping[str, Handler] = {**HANDLERS, "customers/redact": broken}
