"""The console's routes, for `web.create_app` (SPEC C1-C5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from timedify.web.console import compliance, deadletters, login, pages, shops
from timedify.web.console.common import (
    HERE,
    LOGIN,
    PREFIX,
    Console,
    Endpoint,
    Handler,
    Page,
    SecuredStatic,
)

if TYPE_CHECKING:
    from timedify.web.app import Services

# The pages, in navigation order; `extra` pages join them.
PAGES = (
    Page(PREFIX, pages.overview, "Overview"),
    Page(PREFIX + "/chart.json", pages.chart),
    Page(PREFIX + "/events", pages.events_list, "Events"),
    Page(PREFIX + "/events/{event_pk:int}", pages.event),
    Page(PREFIX + "/dead-letters", deadletters.list_page, "Dead letters"),
    Page(PREFIX + "/dead-letters/replay", deadletters.replay_filtered, methods=("POST",)),
    Page(PREFIX + "/dead-letters/{dead_letter_id:int}", deadletters.show),
    Page(
        PREFIX + "/dead-letters/{dead_letter_id:int}/replay",
        deadletters.replay_one,
        methods=("POST",),
    ),
    Page(
        PREFIX + "/dead-letters/{dead_letter_id:int}/dismiss",
        deadletters.dismiss,
        methods=("POST",),
    ),
    Page(PREFIX + "/shops", shops.page, "Shops"),
    Page(PREFIX + "/shops/sync", shops.sync, methods=("POST",)),
    Page(PREFIX + "/compliance", compliance.page, "Compliance"),
    Page(PREFIX + "/logout", login.logout, methods=("POST",)),
)


def routes(services: Services, extra: Sequence[Page] = ()) -> list[BaseRoute]:
    """The console's routes, or none (so `/console` is a 404) when `CONSOLE_PASSWORD` is unset.

    `extra` pages are guarded like the others: a GET needs a login, a POST also the CSRF
    token of the session; those with a title are added to the navigation.
    """
    if services.settings.console_password is None:
        return []
    everything = [*PAGES, *extra]
    console = Console(services, [(p.title, p.path) for p in everything if p.title])
    found: list[BaseRoute] = [
        Route(LOGIN, _bind(console, login.login_form), methods=["GET"]),
        Route(LOGIN, _bind(console, login.login), methods=["POST"]),
        Mount(PREFIX + "/static", SecuredStatic(StaticFiles(directory=HERE / "static"))),
    ]
    for page in everything:
        guard = console.action if "POST" in page.methods else console.page
        found.append(Route(page.path, guard(page.handler), methods=list(page.methods)))
    return found


def _bind(console: Console, handler: Handler) -> Endpoint:
    """The login endpoints: no session needed (they hand one out), headers set by them."""

    async def endpoint(request: Request) -> Response:
        return await handler(console, request)

    return endpoint
