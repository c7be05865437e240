"""Small helpers the tests share: read tables, post a signed webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Connection, Table, select

from timedify.db import make_engine
from timedify.ingest import webhooks
from timedify.models import EventState, WebhookEvent
from timedify.store import events as event_store
from timedify.testing import SignedWebhook, signed_webhook


def table_rows(db_url: str, table: Table | Any = None) -> list[dict[str, Any]]:
    """Every row of `table` (default: webhook events) as dicts, in primary-key order."""
    table = WebhookEvent.__table__ if table is None else getattr(table, "__table__", table)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stmt = select(table).order_by(*table.primary_key.columns)
            return [dict(r) for r in conn.execute(stmt).mappings()]
    finally:
        engine.dispose()


def events(db_url: str) -> list[dict[str, Any]]:
    return table_rows(db_url)


def post_webhook(
    url: str, hook: SignedWebhook, path: str | None = None, timeout: float = 10
) -> httpx.Response:
    return httpx.post(
        url + (path or hook.path()), content=hook.body, headers=hook.headers, timeout=timeout
    )


def store_event(
    db_url: str,
    topic: str,
    shop: str,
    *,
    payload: dict[str, Any] | bytes | None = None,
    webhook_id: str | None = None,
    event_id: str | None = None,
    triggered_at: datetime | None = None,
) -> str:
    """Store one delivery the way ingest does (without HTTP); return its webhook id."""
    return store_events(
        db_url,
        [
            signed_webhook(
                topic,
                shop,
                "unused",
                payload=payload,
                webhook_id=webhook_id,
                event_id=event_id,
                triggered_at=triggered_at,
            )
        ],
    )[0]


def store_events(db_url: str, hooks: list[SignedWebhook]) -> list[str]:
    """Store many deliveries in one transaction, as the ingest path would have."""
    now = datetime.now(UTC)
    rows = [
        {
            "webhook_id": hook.webhook_id,
            "topic": hook.topic,
            "shop_domain": hook.headers["X-Shopify-Shop-Domain"],
            "event_id": hook.headers["X-Shopify-Event-Id"],
            "triggered_at": webhooks.parse_timestamp(hook.headers["X-Shopify-Triggered-At"]),
            "api_version": hook.headers["X-Shopify-Api-Version"],
            "received_at": now,
            "payload": hook.body,
            "state": EventState.RECEIVED,
            "attempts": 0,
            "next_attempt_at": now,
            "processed_at": None,
            "synthetic": False,
        }
        for hook in hooks
    ]
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            event_store.insert_events(conn, rows)
    finally:
        engine.dispose()
    return [hook.webhook_id for hook in hooks]


@contextmanager
def transaction(db_url: str) -> Iterator[Connection]:
    """One transaction on a fresh engine, disposed afterwards."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def execute(db_url: str, statement: Any) -> None:
    """Run one statement in its own transaction (test set-up)."""
    with transaction(db_url) as conn:
        conn.execute(statement)


def drain(settings: Any, handlers: Any = None, max_rounds: int = 500) -> None:
    """Run a worker until no event is waiting (retries included), in this thread."""
    from timedify.processing.handlers import HANDLERS
    from timedify.processing.worker import Worker

    engine = make_engine(settings.database_url)
    worker = Worker(settings, engine, handlers=handlers or HANDLERS)
    waiting = (EventState.RECEIVED, EventState.RETRYING, EventState.PROCESSING)
    try:
        for _ in range(max_rounds):
            if worker.run_once():
                continue
            with engine.connect() as conn:
                left = conn.execute(
                    select(WebhookEvent.id).where(WebhookEvent.state.in_(waiting)).limit(1)
                ).first()
            if left is None:
                return
            time.sleep(0.02)  # a retry that is not due yet
        raise AssertionError("events still waiting after draining")
    finally:
        engine.dispose()
