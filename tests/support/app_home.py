"""Stand-ins for the app home's two dependencies, its log lines, and a reader of its pages.

`StubExchanger` and `StubBilling` implement the `TokenExchanger` and `BillingReader` protocols
with fixed answers (or a fixed failure), recording every call, so the tests of the page need
neither Shopify nor the real token exchange.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson

from timedify.logs import configure_logging
from timedify.shopify.contracts import SubscriptionState


def subscription(
    active: bool = True, *, name: str | None = "Pro", test: bool = False
) -> SubscriptionState:
    now = datetime.now(UTC)
    return SubscriptionState(
        active=active,
        name=name if active else None,
        status="ACTIVE" if active else None,
        current_period_end=datetime(2031, 3, 9, tzinfo=UTC) if active else None,
        test=test,
        checked_at=now - timedelta(seconds=5),
    )


@dataclass
class StubExchanger:
    """`ensure_offline_token` records (shop, id_token) and raises `error` if one is set."""

    error: Exception | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def ensure_offline_token(self, shop: str, id_token: str) -> None:
        self.calls.append((shop, id_token))
        if self.error is not None:
            raise self.error


@dataclass
class StubBilling:
    """`subscription_state` answers `state` (or raises `error`), recording (shop, max age)."""

    state: SubscriptionState = field(default_factory=subscription)
    error: Exception | None = None
    calls: list[tuple[str, float]] = field(default_factory=list)

    def subscription_state(self, shop: str, *, max_age_seconds: float = 0) -> SubscriptionState:
        self.calls.append((shop, max_age_seconds))
        if self.error is not None:
            raise self.error
        return self.state


@contextmanager
def logging_to(path: Path) -> Iterator[Path]:
    """JSON log lines also go to `path` for the block (apps built inside it log there)."""
    configure_logging("INFO", "json", file=path)
    try:
        yield path
    finally:
        configure_logging("INFO", "json")


def log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.startswith(b"{")]


def wait_for_line(path: Path, event: str, timeout: float = 5, **fields: Any) -> dict[str, Any]:
    """The first line of `event` with `fields` (lines logged on the loop land a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in log_lines(path):
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items()):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event} {fields} in {log_lines(path)}")
        time.sleep(0.02)


class Page(HTMLParser):
    """The elements of a page in document order: (tag, attributes, in <head>)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None], bool]] = []
        self._in_head = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
        self.elements.append((tag, dict(attrs), self._in_head))

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False

    def head(self) -> list[tuple[str, dict[str, str | None]]]:
        return [(tag, attrs) for tag, attrs, in_head in self.elements if in_head and tag != "head"]

    def by_id(self, element_id: str) -> dict[str, str | None]:
        return next(attrs for _t, attrs, _h in self.elements if attrs.get("id") == element_id)

    def scripts(self) -> list[str | None]:
        return [attrs.get("src") for tag, attrs, _h in self.elements if tag == "script"]
