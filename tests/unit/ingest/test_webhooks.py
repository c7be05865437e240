"""Signature and header rules of SPEC W1/W2, without a server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timedify.ingest import webhooks

SECRET = b"s3cret"


def test_sign_matches_shopify_definition() -> None:
    """W1: base64(HMAC-SHA256(secret, raw body))."""
    body = b'{"id":1}'
    expected = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    assert webhooks.sign(body, SECRET) == expected


@given(st.binary(max_size=2048))
def test_valid_signature_accepted_for_any_body(body: bytes) -> None:
    assert webhooks.verify_signature(body, webhooks.sign(body, SECRET), [SECRET])


@given(st.binary(min_size=1, max_size=512), st.integers(min_value=0, max_value=511))
def test_any_changed_byte_is_rejected(body: bytes, index: int) -> None:
    """The signature covers the exact bytes: flipping one bit invalidates it."""
    header = webhooks.sign(body, SECRET)
    i = index % len(body)
    tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
    assert not webhooks.verify_signature(tampered, header, [SECRET])


@given(st.binary(max_size=512))
def test_header_as_received_bytes_verifies_like_text(body: bytes) -> None:
    """The endpoint passes the header's raw bytes, surrounding blanks included (W1)."""
    header = f"  {webhooks.sign(body, SECRET)} ".encode()
    assert webhooks.verify_signature(body, header, [SECRET])
    assert not webhooks.verify_signature(body + b"x", header, [SECRET])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not base64!!",
        base64.b64encode(b"short").decode(),
        "A" * 1000,
        "====",
        "\x00",
        b"",
        "é" * 44,
        "é".encode("latin-1") * 44,
    ],
)
def test_malformed_signature_headers_are_invalid_not_errors(header: str | bytes | None) -> None:
    assert not webhooks.verify_signature(b"{}", header, [SECRET])


def test_wrong_secret_rejected_and_previous_secret_accepted() -> None:
    body = b"{}"
    old = webhooks.sign(body, b"old-secret")
    assert not webhooks.verify_signature(body, old, [SECRET])
    assert webhooks.verify_signature(body, old, [SECRET, b"old-secret"])


@pytest.mark.parametrize(
    ("domain", "valid"),
    [
        ("demo.myshopify.com", True),
        ("my-shop-1.myshopify.com", True),
        ("Demo.myshopify.com", False),
        ("demo.myshopify.com.evil.com", False),
        ("https://demo.myshopify.com", False),
        ("demo.myshopify.com/admin", False),
        ("-demo.myshopify.com", False),
        (".myshopify.com", False),
        ("demo.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_shop_domain_validation(domain: str | None, valid: bool) -> None:
    assert webhooks.valid_shop_domain(domain) is valid


def test_triggered_at_parsing() -> None:
    assert webhooks.parse_timestamp("2026-01-02T03:04:05.123Z") == datetime(
        2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC
    )
    assert webhooks.parse_timestamp("garbage") is None
    assert webhooks.parse_timestamp("2026-01-02T03:04:05") is None  # no zone: unreliable order


def test_every_topic_has_its_path_and_the_alias_exists() -> None:
    for topic in webhooks.TOPICS:
        assert webhooks.TOPIC_PATHS[f"/webhooks/{topic}"] == topic
    assert webhooks.TOPIC_PATHS["/webhooks/app/subscriptions_update"] == "app_subscriptions/update"


def test_a_time_out_of_range_in_utc_is_unreadable_not_an_overflow() -> None:
    assert webhooks.parse_timestamp("9999-12-31T23:59:59-14:00") is None
    assert webhooks.parse_timestamp("2026-05-01T14:00:00+02:00") == datetime(
        2026, 5, 1, 12, 0, tzinfo=UTC
    )
