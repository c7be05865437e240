"""The dead-letters pages (C4): exactly `timedify dead-letters` list / show / replay / dismiss.

Every read and every change goes through `processing.dead_letters`, the functions the CLI
calls, with the same lease and retry policy; the pages only translate forms to arguments.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from timedify.processing import dead_letters
from timedify.processing.dead_letters import Filters, ReplayResult
from timedify.processing.retry import RetryPolicy
from timedify.web.console import views
from timedify.web.console.common import Console, log

FILTER_KEYS = ("topic", "shop", "since", "resolved")


def filters_of(values: ImmutableMultiDict[str, Any] | FormData) -> Filters:
    """`topic`, `shop`, `since` (24h, 7d or ISO time) and `resolved` as the CLI's filters."""

    def text(key: str) -> str | None:
        value = values.get(key)
        return value.strip() or None if isinstance(value, str) else None

    return Filters(
        topic=text("topic"),
        shop=text("shop"),
        since=views.since(text("since")),
        include_resolved=text("resolved") == "1",
    )


async def list_page(console: Console, request: Request) -> Response:
    """`/console/dead-letters?topic=&shop=&since=&resolved=1`."""
    filters = filters_of(request.query_params)

    def read() -> list[dead_letters.DeadLetterView]:
        with console.services.engine.connect() as conn:
            return dead_letters.list_dead_letters(conn, filters)

    items = await console.db(read)
    params = {k: request.query_params.get(k, "") for k in FILTER_KEYS}
    return console.render(request, "dead_letters.html", items=items, params=params)


async def show(console: Console, request: Request) -> Response:
    """`/console/dead-letters/{id}`: error, stack, attempts, payload size and keys."""
    dead_letter_id = int(request.path_params["dead_letter_id"])

    def read() -> dead_letters.DeadLetterDetail:
        with console.services.engine.connect() as conn:
            return dead_letters.get(conn, dead_letter_id)

    item = await console.db(read)
    return console.render(request, "dead_letter.html", item=item)


async def replay_one(console: Console, request: Request) -> Response:
    """POST `/console/dead-letters/{id}/replay`: run it through its handler again."""
    dead_letter_id = int(request.path_params["dead_letter_id"])
    lease, policy = _replay_options(console)
    result = await console.db(
        dead_letters.replay, console.services.engine, dead_letter_id, lease=lease, policy=policy
    )
    return _results(console, request, [result], f"Replay of dead letter {dead_letter_id}")


async def replay_filtered(console: Console, request: Request) -> Response:
    """POST `/console/dead-letters/replay`: every unresolved one matching the form's filters."""
    filters = filters_of(await request.form())
    lease, policy = _replay_options(console)
    results = await console.db(
        dead_letters.replay_all, console.services.engine, filters, lease=lease, policy=policy
    )
    return _results(console, request, results, "Replay of the filtered dead letters")


async def dismiss(console: Console, request: Request) -> Response:
    """POST `/console/dead-letters/{id}/dismiss`: resolve it without applying it."""
    dead_letter_id = int(request.path_params["dead_letter_id"])
    await console.db(dead_letters.dismiss, console.services.engine, dead_letter_id)
    log.info("console_dead_letter_dismissed", dead_letter_id=dead_letter_id)
    return console.render(
        request,
        "results.html",
        title=f"Dead letter {dead_letter_id} dismissed",
        results=[],
        message=f"Dead letter {dead_letter_id} is resolved as dismissed; its event stays dead.",
    )


def _replay_options(console: Console) -> tuple[timedelta, RetryPolicy]:
    """The lease and retry policy `timedify dead-letters replay` uses."""
    settings = console.settings
    return timedelta(seconds=settings.worker_lease_seconds), RetryPolicy.from_settings(settings)


def _results(
    console: Console, request: Request, results: list[ReplayResult], title: str
) -> Response:
    failed = [r for r in results if not r.ok]
    log.info("console_dead_letters_replayed", replayed=len(results), failed=len(failed))
    message = (
        "Nothing to replay."
        if not results
        else (f"{len(results) - len(failed)} applied, {len(failed)} failed again (still dead).")
    )
    return console.render(request, "results.html", title=title, results=results, message=message)
