"""Small helpers the tests share: read tables, post a signed webhook."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Table, select

from timedify.db import make_engine
from timedify.models import WebhookEvent
from timedify.testing import SignedWebhook


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
