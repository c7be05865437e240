"""H5: Sentry only with a DSN, and nothing secret or personal leaves in an event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from tests.support.settings import make_settings
from timedify.errorreporting import init_sentry, scrub


class CapturingTransport(Transport):
    """A real sentry_sdk transport that keeps events in memory instead of sending them."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


@pytest.fixture
def sentry_off() -> Iterator[None]:
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to an inactive client


def test_no_dsn_no_sentry(tmp_path: Path, sentry_off: None) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path)
    assert init_sentry(settings) is False
    assert not sentry_sdk.get_client().is_active()


def test_events_are_scrubbed_before_leaving(tmp_path: Path, sentry_off: None) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/x.sqlite3", tmp_path, sentry_dsn="https://public@127.0.0.1:9/1"
    )
    transport = CapturingTransport()
    assert init_sentry(settings, transport=transport) is True
    with sentry_sdk.new_scope() as scope:
        scope.set_user({"email": "john@example.com", "id": 42})
        scope.set_extra("access_token", "shpat_secret_token_123")
        scope.set_extra("context", {"email": "john@example.com", "topic": "shop/redact"})
        scope.set_tag("shop", "demo.myshopify.com")
        try:
            raise RuntimeError("customer john@example.com +15556251199 failed")
        except RuntimeError:
            sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=5)
    assert len(transport.events) == 1
    event = transport.events[0]
    text = repr(event)
    for leaked in ("john@example.com", "+15556251199", "shpat_secret_token_123"):
        assert leaked not in text
    assert "user" not in event
    assert event["extra"]["context"]["topic"] == "shop/redact"
    assert event["tags"]["shop"] == "demo.myshopify.com"
    assert event["exception"]["values"][0]["value"] == "customer [redacted] [redacted] failed"


def test_scrub_drops_request_bodies_and_headers() -> None:
    event = {
        "request": {
            "url": "https://app.example.com/webhooks/shop/redact?token=abc",
            "method": "POST",
            "data": '{"customer": {"email": "john@example.com"}}',
            "cookies": {"session": "x"},
            "query_string": "token=abc",
            "headers": {
                "X-Shopify-Hmac-Sha256": "c2lnbmF0dXJl",
                "Authorization": "Bearer metrics-token",
                "X-Shopify-Topic": "shop/redact",
                "Content-Type": "application/json",
            },
        },
        "breadcrumbs": {
            "values": [{"message": "mail john@example.com", "data": {"password": "p"}}]
        },
    }
    cleaned = scrub(event)
    request = cleaned["request"]
    assert set(request) == {"url", "method", "headers"}
    assert request["url"] == "https://app.example.com/webhooks/shop/redact"
    assert request["headers"] == {
        "X-Shopify-Topic": "shop/redact",
        "Content-Type": "application/json",
    }
    crumb = cleaned["breadcrumbs"]["values"][0]
    assert crumb == {"message": "mail [redacted]", "data": {"password": "[redacted]"}}


def test_scrub_masks_session_tokens_in_messages() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
    event = {"message": f"bad token {token}", "exception": {"values": [{"value": token}]}}
    cleaned = scrub(event)
    assert token not in str(cleaned)
