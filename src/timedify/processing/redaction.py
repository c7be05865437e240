"""Finding and removing a customer's personal data in stored JSON, and keeping it out of errors.

Used by the compliance handlers (SPEC P4) and by the worker so that an error message or stack
trace recorded for an event never repeats a value from its payload (H3).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

REDACTED = "[redacted]"
# Keys that, in an object describing the customer, hold their identity.
PERSONAL_KEYS = frozenset(
    {"email", "phone", "first_name", "last_name", "name", "address1", "address2", "zip"}
)
_MIN_VALUE_LENGTH = 4  # shorter payload values (flags, small numbers) say nothing about anyone


@dataclass(frozen=True)
class Customer:
    """Who a compliance webhook is about: Shopify's customer id, e-mail and phone."""

    id: str | None
    email: str | None
    phone: str | None

    @classmethod
    def from_payload(cls, payload: Any) -> Customer:
        raw = payload.get("customer") if isinstance(payload, dict) else None
        data = raw if isinstance(raw, dict) else {}
        return cls(
            id=_text(data.get("id")),
            email=_text(data.get("email")),
            phone=_text(data.get("phone")),
        )

    @property
    def known(self) -> bool:
        return any((self.id, self.email, self.phone))

    def reference(self, shop: str) -> str:
        """A pseudonymous reference (the compliance record must not hold the customer's id)."""
        key = f"{shop}:{self.id or self.email or self.phone or ''}"
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:56]

    def _values(self) -> list[str]:
        return [v.lower() for v in (self.email, self.phone) if v and len(v) >= _MIN_VALUE_LENGTH]

    def is_me(self, obj: dict[str, Any]) -> bool:
        """True for an object that describes this customer (their id, e-mail or phone)."""
        if self.id is not None and _text(obj.get("id")) == self.id:
            return True
        values = self._values()
        return any(_text(obj.get(k), lower=True) in values for k in ("email", "phone"))


def load(payload: bytes) -> Any:
    """The stored payload as JSON (an unreadable one as an empty object)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}


def mentions(obj: Any, customer: Customer) -> bool:
    """Does this JSON document hold anything about `customer`?"""
    return scrub(obj, customer)[1]


def scrub(obj: Any, customer: Customer) -> tuple[Any, bool]:
    """A copy of `obj` without `customer`'s data, and whether anything was removed."""
    if isinstance(obj, dict):
        changed = False
        out: dict[str, Any] = {}
        mine = customer.is_me(obj)
        for key, value in obj.items():
            if key == "customer" and isinstance(value, dict) and customer.is_me(value):
                out[key], changed = {"redacted": True}, True
            elif key == "customer_id" and customer.id is not None and _text(value) == customer.id:
                out[key], changed = None, True
            elif mine and key in PERSONAL_KEYS and value is not None:
                out[key], changed = REDACTED, True
            else:
                out[key], sub = scrub(value, customer)
                changed = changed or sub
        return out, changed
    if isinstance(obj, list):
        items = [scrub(item, customer) for item in obj]
        return [item for item, _ in items], any(sub for _, sub in items)
    if isinstance(obj, str):
        text = obj
        for value in customer._values():
            text = re.sub(re.escape(value), REDACTED, text, flags=re.IGNORECASE)
        return text, text != obj
    return obj, False


def redact_text(text: str, payload: bytes) -> str:
    """`text` with every value of `payload` that appears in it replaced (error messages, stacks)."""
    for value in sorted(_leaf_values(load(payload)), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def _leaf_values(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        return set().union(*(_leaf_values(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_leaf_values(v) for v in obj)) if obj else set()
    if obj is None or isinstance(obj, bool):
        return set()
    value = str(obj)
    return {value} if len(value) >= _MIN_VALUE_LENGTH else set()


def _text(value: Any, *, lower: bool = False) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return (text.lower() if lower else text) or None
