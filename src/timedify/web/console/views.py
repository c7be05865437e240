"""Turning stored values into what a page shows: masked payloads, cursors, times, filters."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from timedify.errors import TimedifyError
from timedify.processing.dead_letters import parse_since
from timedify.processing.redaction import PERSONAL_KEYS, REDACTED, Customer, load, scrub


def masked(payload: bytes) -> tuple[str, list[str], int]:
    """The payload as indented JSON with every customer field's value masked, its top-level
    keys and its size in bytes (C3: the operator sees the shape, never the person)."""
    document = load(payload)
    keys = sorted(document) if isinstance(document, dict) else []
    text = orjson.dumps(mask(document, Customer.from_payload(document)), option=orjson.OPT_INDENT_2)
    return text.decode(), keys, len(payload)


def mask(obj: Any, customer: Customer, inside_customer: bool = False) -> Any:
    """A copy of `obj`: values of personal keys, and every value inside a `customer*` object,
    replaced; the customer's e-mail and phone removed from any other text (`redaction.scrub`)."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            personal = inside_customer or key.startswith("customer")
            if (personal or key in PERSONAL_KEYS) and _scalar(value):
                out[key] = REDACTED
            else:
                out[key] = mask(value, customer, personal)
        return out
    if isinstance(obj, list):
        return [mask(item, customer, inside_customer) for item in obj]
    if isinstance(obj, str):
        return scrub(obj, customer)[0]
    return obj


def _scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list))


class ChartCache:
    """The chart's counts of past buckets, kept between requests (one process's memory).

    Events are stamped when they arrive and attempts when they end, and both commit within
    seconds, so a bucket that ended more than `SETTLED_SECONDS` ago no longer changes: a
    refresh reads only the newer ones instead of the whole day.
    """

    SETTLED_SECONDS = 60

    def __init__(self) -> None:
        self._series: dict[str, dict[int, int]] = {}
        self._settled_until: int | None = None

    def since(self, start: int) -> int:
        """Where the next read must start for a window starting at `start` (Unix seconds)."""
        settled = self._settled_until
        return start if settled is None or settled < start else settled

    def merge(
        self, fresh: dict[str, dict[int, int]], start: int, since: int, now: float, bucket: int
    ) -> dict[str, dict[int, int]]:
        """The window's counts: the kept ones before `since`, then `fresh` (read from it)."""
        for name, values in fresh.items():
            kept = {t: n for t, n in self._series.get(name, {}).items() if start <= t < since}
            kept.update(values)
            self._series[name] = kept
        self._settled_until = int(now - self.SETTLED_SECONDS) // bucket * bucket
        return self._series


def encode_cursor(cursor: tuple[datetime, int]) -> str:
    """An opaque `before=` value for the next page."""
    at, event_pk = cursor
    raw = f"{at.astimezone(UTC).isoformat()}|{event_pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[datetime, int] | None:
    """The cursor of a `before=` value; a malformed one is refused."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, event_pk = raw.rsplit("|", 1)
        return datetime.fromisoformat(at).astimezone(UTC), int(event_pk)
    except (ValueError, UnicodeDecodeError):
        raise TimedifyError("invalid page cursor: start again from the first page") from None


def since(text: str | None) -> datetime | None:
    """`since=` as the CLI's `--since` reads it: `24h`, `7d` or an ISO time."""
    return parse_since(text) if text and text.strip() else None


def pretty_json(text: str | None) -> str:
    """A JSON text indented (a compliance report), or the text itself if it is not JSON."""
    if not text:
        return ""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


NONE = "\N{EN DASH}"  # shown for a missing value


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else NONE


def _age(value: datetime | float | None) -> str:
    """A duration for people: `42 s`, `7 min`, `3.5 h`, `2.0 d`."""
    if value is None:
        return NONE
    seconds = (datetime.now(UTC) - value).total_seconds() if isinstance(value, datetime) else value
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size * (2 if unit == "min" else 1):
            amount = seconds / size
            return f"{amount:.0f} {unit}" if unit == "min" else f"{amount:.1f} {unit}"
    return f"{seconds:.0f} s"


FILTERS = {"when": _when, "age": _age}
