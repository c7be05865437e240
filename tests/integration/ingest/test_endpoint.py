"""SPEC W1-W4 over real HTTP against a real database, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.helpers import events
from tests.support.helpers import post_webhook as post
from tests.support.servers import threaded_server
from tests.support.settings import PREVIOUS_SECRET, SECRET, SHOP, make_settings
from timedify.db import make_engine
from timedify.ingest import webhooks
from timedify.ingest.committer import GroupCommitter
from timedify.ingest.endpoint import WebhookEndpoint
from timedify.metrics import Metrics
from timedify.models import EventState
from timedify.testing import signed_webhook


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    settings = make_settings(db_url, tmp_path, shopify_api_secret_previous=PREVIOUS_SECRET)
    with threaded_server(settings) as (url, _app):
        yield url


def test_signed_webhook_is_stored_byte_for_byte(server: str, db_url: str) -> None:
    """W1/W4: a valid delivery gets 200 and its exact raw bytes and headers are stored."""
    body = b'{"id": 1,   "myshopify_domain": "demo-shop.myshopify.com"}'
    hook = signed_webhook("app/uninstalled", SHOP, SECRET, payload=body)
    response = post(server, hook)
    assert response.status_code == 200
    [row] = events(db_url)
    assert row["payload"] == body
    assert row["webhook_id"] == hook.webhook_id
    assert row["event_id"] == hook.headers["X-Shopify-Event-Id"]
    assert row["shop_domain"] == SHOP
    assert row["topic"] == "app/uninstalled"
    assert row["state"] == EventState.RECEIVED
    assert row["triggered_at"] is not None


@pytest.mark.parametrize(
    "topic",
    webhooks.TOPICS,
)
def test_each_topic_path_and_the_unified_path_accept(server: str, db_url: str, topic: str) -> None:
    assert post(server, signed_webhook(topic, SHOP, SECRET)).status_code == 200
    assert post(server, signed_webhook(topic, SHOP, SECRET), "/webhooks").status_code == 200
    assert [e["topic"] for e in events(db_url)] == [topic, topic]


def test_subscription_alias_path(server: str, db_url: str) -> None:
    hook = signed_webhook("app_subscriptions/update", SHOP, SECRET)
    assert post(server, hook, "/webhooks/app/subscriptions_update").status_code == 200
    assert len(events(db_url)) == 1


@pytest.mark.parametrize("signature", [None, "", "bm9wZQ==", "x" * 44, "not base64"])
def test_bad_signature_is_401_and_nothing_stored(
    server: str, db_url: str, signature: str | None
) -> None:
    """W1: missing or wrong signature -> 401, nothing stored."""
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    if signature is None:
        del hook.headers["X-Shopify-Hmac-Sha256"]
    else:
        hook.headers["X-Shopify-Hmac-Sha256"] = signature
    response = post(server, hook)
    assert response.status_code == 401
    assert response.json()["error"] in {"missing_signature", "invalid_signature"}
    assert events(db_url) == []


def test_signature_by_another_secret_is_401(server: str, db_url: str) -> None:
    assert post(server, signed_webhook("shop/redact", SHOP, "other")).status_code == 401
    assert events(db_url) == []


def test_signature_over_other_bytes_is_401(server: str, db_url: str) -> None:
    """The check is over the bytes received, not a re-serialisation of the JSON."""
    hook = signed_webhook("shop/redact", SHOP, SECRET, payload=b'{"a": 1}')
    response = httpx.post(server + hook.path(), content=b'{"a":1}', headers=hook.headers)
    assert response.status_code == 401
    assert events(db_url) == []


def test_previous_secret_accepted_during_rotation(server: str, db_url: str) -> None:
    assert post(server, signed_webhook("shop/redact", SHOP, PREVIOUS_SECRET)).status_code == 200
    assert len(events(db_url)) == 1


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("X-Shopify-Topic", None, "missing_topic"),
        ("X-Shopify-Topic", "not a topic", "invalid_topic"),
        ("X-Shopify-Webhook-Id", None, "missing_webhook_id"),
        ("X-Shopify-Webhook-Id", "x" * 300, "invalid_webhook_id"),
        ("X-Shopify-Shop-Domain", None, "missing_shop_domain"),
        ("X-Shopify-Shop-Domain", "evil.example.com", "invalid_shop_domain"),
        ("X-Shopify-Shop-Domain", "demo.myshopify.com.evil.com", "invalid_shop_domain"),
    ],
)
def test_malformed_headers_are_400(
    server: str, db_url: str, header: str, value: str | None, reason: str
) -> None:
    """W2: required headers, validated; a signed but malformed request is 400, not stored."""
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    if value is None:
        del hook.headers[header]
    else:
        hook.headers[header] = value
    response = post(server, hook)
    assert (response.status_code, response.json()["error"]) == (400, reason)
    assert events(db_url) == []


def test_header_names_are_case_insensitive(server: str, db_url: str) -> None:
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    mixed = {k.upper() if i % 2 else k.lower(): v for i, (k, v) in enumerate(hook.headers.items())}
    response = httpx.post(server + hook.path(), content=hook.body, headers=mixed)
    assert response.status_code == 200
    assert len(events(db_url)) == 1


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
def test_compliance_topic_takes_shop_from_payload(server: str, db_url: str, topic: str) -> None:
    """W2: Shopify has sent compliance webhooks without the shop header."""
    hook = signed_webhook(topic, SHOP, SECRET, include_shop_header=False)
    assert post(server, hook).status_code == 200
    assert events(db_url)[0]["shop_domain"] == SHOP


def test_non_compliance_topic_without_shop_header_is_400(server: str, db_url: str) -> None:
    hook = signed_webhook(
        "app/uninstalled", SHOP, SECRET, payload={"shop_domain": SHOP}, include_shop_header=False
    )
    assert post(server, hook).status_code == 400


@pytest.mark.parametrize("body", [b"not json", b"", b"[1, 2]", b'"text"', b"{"])
def test_signed_body_that_is_not_a_json_object_is_400(
    server: str, db_url: str, body: bytes
) -> None:
    hook = signed_webhook("app/uninstalled", SHOP, SECRET, payload=body)
    response = post(server, hook)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json")
    assert events(db_url) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(server: str, method: str) -> None:
    response = httpx.request(method, server + "/webhooks/app/uninstalled")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_oversized_body_is_413_by_content_length(server: str, db_url: str) -> None:
    hook = signed_webhook(
        "app/uninstalled", SHOP, SECRET, payload={"pad": "x" * (1024 * 1024 + 10)}
    )
    response = post(server, hook)
    assert response.status_code == 413
    assert events(db_url) == []


def test_oversized_chunked_body_is_413(server: str, db_url: str) -> None:
    """No Content-Length: the limit is enforced while reading, not after buffering it all."""
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    response = httpx.post(server + hook.path(), content=chunks(), headers=hook.headers)
    assert response.status_code == 413
    assert events(db_url) == []


def test_topic_header_wins_over_path(server: str, db_url: str) -> None:
    """W2: a header that disagrees with the per-topic path is handled by the header's topic."""
    hook = signed_webhook("shop/redact", SHOP, SECRET)
    assert post(server, hook, "/webhooks/app/uninstalled").status_code == 200
    assert events(db_url)[0]["topic"] == "shop/redact"


def test_unhandled_topic_is_200_and_stored_as_ignored(server: str, db_url: str) -> None:
    hook = signed_webhook("orders/create", SHOP, SECRET, payload={"id": 1})
    assert post(server, hook, "/webhooks").status_code == 200
    [row] = events(db_url)
    assert (row["topic"], row["state"]) == ("orders/create", EventState.IGNORED)


def test_redelivery_of_the_same_webhook_id_is_200_and_stored_once(server: str, db_url: str) -> None:
    """W3: Shopify retries deliver the same webhook id again."""
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    assert [post(server, hook).status_code for _ in range(3)] == [200, 200, 200]
    assert len(events(db_url)) == 1


def test_same_event_on_two_subscriptions_is_stored_twice(server: str, db_url: str) -> None:
    """W3: same (topic, event id) under two webhook ids is kept; applying once is the worker's."""
    first = signed_webhook("app/uninstalled", SHOP, SECRET, event_id="evt-1")
    second = signed_webhook("app/uninstalled", SHOP, SECRET, event_id="evt-1")
    assert post(server, first).status_code == 200
    assert post(server, second, "/webhooks").status_code == 200
    assert [e["event_id"] for e in events(db_url)] == ["evt-1", "evt-1"]


def test_concurrent_deliveries_all_durable(server: str, db_url: str) -> None:
    """Group commit: many concurrent requests, every 200 is a stored row, duplicates once."""
    import asyncio

    hooks = [signed_webhook("app/scopes_update", SHOP, SECRET) for _ in range(150)]
    hooks += hooks[:30]  # redeliveries mixed in

    async def send_all() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *(client.post(server + h.path(), content=h.body, headers=h.headers) for h in hooks)
            )
        return [r.status_code for r in responses]

    assert set(asyncio.run(send_all())) == {200}
    assert sorted(e["webhook_id"] for e in events(db_url)) == sorted({h.webhook_id for h in hooks})


def test_response_bodies_are_json(server: str) -> None:
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    response = post(server, hook)
    assert response.headers["content-type"] == "application/json"
    assert orjson.loads(response.content) == {"status": "accepted"}


def _answer_in_process(
    sqlite_url: str, tmp_path: Path, headers: list[tuple[bytes, bytes]], body: bytes
) -> dict[str, Any]:
    """The endpoint called as an ASGI app with exactly these header bytes: its response start.

    uvicorn's parser normalises some values itself (blanks, lengths); other ASGI servers may
    pass them as sent, so the endpoint's own reading is checked here.
    """
    engine = make_engine(sqlite_url)
    endpoint = WebhookEndpoint(
        make_settings(sqlite_url, tmp_path), GroupCommitter(engine), Metrics()
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/webhooks", "headers": headers}
    try:
        asyncio.run(endpoint(scope, receive, send))
    finally:
        engine.dispose()
    return {"status": sent[0]["status"], **orjson.loads(sent[1]["body"])}


@pytest.mark.parametrize(
    ("declared", "status"),
    [(b" 2 ", 401), (b"", 401), (b"2x", 413), (b" 99999999 ", 413)],
)
def test_declared_length_is_read_like_any_header(
    sqlite_url: str, tmp_path: Path, declared: bytes, status: int
) -> None:
    """Blanks around Content-Length are not part of it and a blank one is missing, as for every
    header (W2); a value that is not a number is refused before the body is read (413)."""
    # Unsigned: refused after the length check.
    answer = _answer_in_process(sqlite_url, tmp_path, [(b"content-length", declared)], b"{}")
    assert answer["status"] == status


@pytest.mark.parametrize(
    ("topic", "webhook_id", "reason"),
    [
        (b"  ", b"id-1", "missing_topic"),
        (b" app/uninstalled ", b"  ", "missing_webhook_id"),
        (b"app/uninstalled", b"", "missing_webhook_id"),
    ],
)
def test_blank_headers_are_missing_and_blanks_around_a_value_are_not_part_of_it(
    sqlite_url: str, tmp_path: Path, topic: bytes, webhook_id: bytes, reason: str
) -> None:
    """W2: a signed request whose required header is blank is refused as missing (400); the
    topic padded with blanks is still read as the topic (else it would be `invalid_topic`)."""
    hook = signed_webhook("app/uninstalled", SHOP, SECRET)
    headers = [(name.lower().encode(), value.encode()) for name, value in hook.headers.items()]
    headers = [h for h in headers if h[0] not in (b"x-shopify-topic", b"x-shopify-webhook-id")]
    headers += [(b"x-shopify-topic", topic), (b"x-shopify-webhook-id", webhook_id)]
    answer = _answer_in_process(sqlite_url, tmp_path, headers, hook.body)
    assert (answer["status"], answer["error"]) == (400, reason)
