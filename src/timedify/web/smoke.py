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

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from timedify.ingest import webhooks
from timedify.logs import get_logger
from timedify.store import synthetic

log = get_logger("timedify.toolkit.smoke")
SIGNATURE_HEADER = "x-timedify-hmac-sha256"
MAX_IDS = 100


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
            return synthetic.states(conn, ids)

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
            return synthetic.remove(conn, ids, webhooks.SYNTHETIC_SHOP_DOMAIN)

    try:
        deleted = await run_in_threadpool(purge)
    except Exception as exc:  # nothing half-done: the transaction rolled back
        log.warning("smoke_cleanup_failed", error_class="db", error_type=type(exc).__name__)
        return JSONResponse({"error": "database_unavailable"}, status_code=503)
    log.info("smoke_cleanup", deleted=deleted)
    return JSONResponse({"deleted": deleted})
