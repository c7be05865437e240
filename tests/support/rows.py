"""Rows written straight into the tables, for the toolkit tests that need a known history.

The toolkit reads and cleans what the service and the worker write; these helpers create that
history directly (old events, dead letters, compliance requests) in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from timedify.db import make_engine
from timedify.models import ComplianceRequest, DeadLetter, EventState, WebhookEvent, WorkerHeartbeat

NOW = datetime.now(UTC)


def event_row(
    *,
    age: timedelta,
    state: str = EventState.PROCESSED,
    topic: str = "app/uninstalled",
    shop: str = "demo-shop.myshopify.com",
    synthetic: bool = False,
) -> dict[str, Any]:
    received = datetime.now(UTC) - age
    return {
        "webhook_id": str(uuid.uuid4()),
        "topic": topic,
        "shop_domain": shop,
        "received_at": received,
        "payload": b'{"id": 1}',
        "state": state,
        "attempts": 1,
        "next_attempt_at": received,
        "processed_at": received if state == EventState.PROCESSED else None,
        "synthetic": synthetic,
    }


def insert_rows(db_url: str, model: Any, rows: Iterable[dict[str, Any]]) -> list[int]:
    """Insert rows (in chunks) and return their ids when the table has one."""
    rows = list(rows)
    engine = make_engine(db_url)
    ids: list[int] = []
    try:
        with engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                chunk = rows[start : start + 5000]
                if hasattr(model, "id"):
                    result = conn.execute(insert(model).returning(model.id), chunk)
                    ids += [r[0] for r in result]
                else:
                    conn.execute(insert(model), chunk)
    finally:
        engine.dispose()
    return ids


def dead_letter_row(event_pk: int, *, resolved_age: timedelta | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_pk": event_pk,
        "topic": "app/uninstalled",
        "shop_domain": "demo-shop.myshopify.com",
        "error": "RuntimeError: boom",
        "attempts": 8,
        "first_failed_at": now - timedelta(days=60),
        "last_failed_at": now - timedelta(days=59),
        "replays": 0,
        "resolved_at": now - resolved_age if resolved_age is not None else None,
        "resolution": "discarded" if resolved_age is not None else None,
    }


def compliance_row(
    *, deadline_in: timedelta, completed_age: timedelta | None = None, report: str | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "kind": "customers/data_request",
        "shop_domain": "demo-shop.myshopify.com",
        "received_at": now - timedelta(days=1),
        "deadline_at": now + deadline_in,
        "status": "completed" if completed_age is not None else "open",
        "completed_at": now - completed_age if completed_age is not None else None,
        "report": report,
    }


def heartbeat(db_url: str) -> None:
    """A worker that reported just now (so /health passes)."""
    now = datetime.now(UTC)
    insert_rows(
        db_url,
        WorkerHeartbeat,
        [
            {
                "worker_id": f"test-{uuid.uuid4().hex[:8]}",
                "hostname": "test",
                "pid": 1,
                "started_at": now,
                "last_seen_at": now,
                "processed": 0,
            }
        ],
    )


def received_row(webhook_id: str, received_at: datetime | None = None) -> dict[str, Any]:
    """An event row as the ingest stores it (state received), for the store's own tests."""
    now = received_at or datetime.now(UTC)
    return {
        "webhook_id": webhook_id,
        "topic": "app/uninstalled",
        "shop_domain": "demo-shop.myshopify.com",
        "event_id": str(uuid.uuid4()),
        "triggered_at": now - timedelta(seconds=1),
        "api_version": "2025-10",
        "received_at": now,
        "payload": b'{"id": 1}',
        "state": EventState.RECEIVED,
        "attempts": 0,
        "next_attempt_at": now,
        "processed_at": None,
        "synthetic": False,
    }


__all__ = [
    "ComplianceRequest",
    "DeadLetter",
    "WebhookEvent",
    "compliance_row",
    "dead_letter_row",
    "event_row",
    "heartbeat",
    "insert_rows",
    "received_row",
]
