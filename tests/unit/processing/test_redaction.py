"""Scrubbing one customer from stored JSON; keeping payload values out of error text."""

from __future__ import annotations

import orjson
import pytest

from timedify.processing.redaction import REDACTED, Customer, mentions, redact_text, scrub

JOHN = Customer(id="191167", email="john@example.com", phone="+15556251199")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"customer": {"id": 191167, "email": "x@y.z"}}, {"customer": {"redacted": True}}),
        ({"customer": {"id": 5, "email": "JOHN@example.com"}}, {"customer": {"redacted": True}}),
        ({"customer_id": 191167, "total": "9.99"}, {"customer_id": None, "total": "9.99"}),
        (
            {"email": "john@example.com", "first_name": "John", "id": 3},
            {"email": REDACTED, "first_name": REDACTED, "id": 3},
        ),
        ({"note": "call +15556251199 today"}, {"note": f"call {REDACTED} today"}),
        ([{"contact": "John@Example.com"}], [{"contact": REDACTED}]),
    ],
)
def test_scrub_removes_the_customer(document: object, expected: object) -> None:
    clean, changed = scrub(document, JOHN)
    assert changed
    assert clean == expected
    assert not mentions(clean, JOHN)


@pytest.mark.parametrize(
    "document",
    [
        {"customer": {"id": 42, "email": "jane@example.com", "first_name": "Jane"}},
        {"customer_id": 42, "email": "jane@example.com"},
        {"id": 548380009, "domain": "demo.myshopify.com"},
        [],
        "plain text",
    ],
)
def test_other_customers_and_shop_data_are_untouched(document: object) -> None:
    assert scrub(document, JOHN) == (document, False)


def test_customer_from_payload_and_pseudonymous_reference() -> None:
    customer = Customer.from_payload({"customer": {"id": 191167, "email": "john@example.com"}})
    assert customer.id == "191167"
    assert customer.known
    assert not Customer.from_payload({"customer": "nobody"}).known
    ref = customer.reference("demo.myshopify.com")
    assert ref.startswith("sha256:")
    assert len(ref) <= 64
    assert "191167" not in ref


def test_error_text_loses_every_payload_value() -> None:
    payload = orjson.dumps({"customer": {"email": "john@example.com", "id": 191167}, "n": 7})
    text = redact_text("KeyError: john@example.com not found for 191167 (7 tries)", payload)
    assert "john@example.com" not in text
    assert "191167" not in text
    assert "(7 tries)" in text  # values this short say nothing about anyone
