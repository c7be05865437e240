"""The service's side of `timedify smoke`: look up and remove synthetic events (SPEC O7).

Synthetic events are the ones sent for the reserved shop `webhooks.SYNTHETIC_SHOP_DOMAIN`; they
are stored and processed like real ones but flagged `synthetic` and never counted. Two routes:

- `GET /smoke/events?id=...` (read-only): the state of the given synthetic events. It can only
  ever show synthetic events, so it tells an anonymous caller nothing about real shops.
- `POST /smoke/cleanup`: deletes the given synthetic events and everything the synthetic shop
  left behind. The body must be signed like a webhook (HMAC-SHA256 with the app secret, header
  `X-Timedify-Hmac-Sha256`), so only someone holding the secret can remove anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from timedify.ingest import webhooks
from timedify.logs import get_logger
from timedify.models import (
    AppliedEvent,
    ComplianceRequest,
    Shop,
    ShopSession,
    Subscription,
    WebhookEvent,
)

log = get_logger("timedify.toolkit.smoke")
SIGNATURE_HEADER = "x-timedify-hmac-sha256"
MAX_IDS = 100


def states(conn: Connection, webhook_ids: Sequence[str]) -> dict[str, str]:
    """webhook id -> state, for synthetic events only."""
    e = WebhookEvent
    rows = conn.execute(
        select(e.webhook_id, e.state).where(e.webhook_id.in_(webhook_ids), e.synthetic.is_(True))
    )
    return {str(webhook_id): str(state) for webhook_id, state in rows}


def remove(conn: Connection, webhook_ids: Sequence[str]) -> int:
    """Delete the synthetic events and the synthetic shop's data; return the events deleted."""
    e = WebhookEvent
    pks = list(
        conn.execute(
            select(e.id).where(e.webhook_id.in_(webhook_ids), e.synthetic.is_(True))
        ).scalars()
    )
    shop = webhooks.SYNTHETIC_SHOP_DOMAIN
    if pks:
        conn.execute(delete(AppliedEvent).where(AppliedEvent.event_pk.in_(pks)))
        conn.execute(delete(ComplianceRequest).where(ComplianceRequest.event_pk.in_(pks)))
        conn.execute(delete(e).where(e.id.in_(pks)))  # attempts and dead letters cascade
    conn.execute(delete(ComplianceRequest).where(ComplianceRequest.shop_domain == shop))
    conn.execute(delete(Subscription).where(Subscription.shop_domain == shop))
    conn.execute(delete(ShopSession).where(ShopSession.shop_domain == shop))
    conn.execute(delete(Shop).where(Shop.domain == shop))
    return len(pks)


def routes() -> list[Route]:
    """The two routes, for `web.create_app`."""
    return [
        Route("/smoke/events", _events, methods=["GET"]),
        Route("/smoke/cleanup", _cleanup, methods=["POST"]),
    ]


async def _events(request: Request) -> Response:
    services: Any = request.app.state.services
    ids = request.query_params.getlist("id")[:MAX_IDS]

    def query() -> dict[str, str]:
        with services.read_engine.connect() as conn:
            return states(conn, ids)

    try:
        found = await run_in_threadpool(query)
    except Exception as exc:  # the database is the only dependency
        log.warning("smoke_lookup_failed", error_class="db", error_type=type(exc).__name__)
        return JSONResponse({"error": "database_unavailable"}, status_code=503)
    return JSONResponse({"events": found})


async def _cleanup(request: Request) -> Response:
    services: Any = request.app.state.services
    body = await request.body()
    header = request.headers.get(SIGNATURE_HEADER)
    if not webhooks.verify_signature(body, header, services.settings.webhook_secrets()):
        return JSONResponse({"error": "invalid_signature"}, status_code=401)
    try:
        ids = [str(i) for i in orjson.loads(body)["webhook_ids"]][:MAX_IDS]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return JSONResponse({"error": "invalid_json"}, status_code=400)

    def purge() -> int:
        with services.engine.begin() as conn:
            return remove(conn, ids)

    try:
        deleted = await run_in_threadpool(purge)
    except Exception as exc:  # nothing half-done: the transaction rolled back
        log.warning("smoke_cleanup_failed", error_class="db", error_type=type(exc).__name__)
        return JSONResponse({"error": "database_unavailable"}, status_code=503)
    log.info("smoke_cleanup", deleted=deleted)
    return JSONResponse({"deleted": deleted})
