"""What every console page shares: the guard (session, CSRF), the headers, the templates.

Handlers are plain `async def handler(console, request) -> Response`; `Console.page` and
`Console.action` wrap them into Starlette endpoints that check the session (and, for a POST,
the CSRF token), run the error boundary and add the security headers (C1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from timedify.errors import TimedifyError
from timedify.logs import get_logger
from timedify.web.console import views
from timedify.web.console.auth import COOKIE, LoginLimiter, Session, Sessions

if TYPE_CHECKING:
    from timedify.web.app import Services

log = get_logger("timedify.web.console")
HERE = Path(__file__).parent
PREFIX = "/console"
LOGIN = PREFIX + "/login"
CSP = "default-src 'self'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
Handler = Callable[["Console", Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Page:
    """A console route; one with a `title` is in the navigation (in the order given)."""

    path: str
    handler: Handler
    title: str | None = None
    methods: tuple[str, ...] = ("GET",)


class Console:
    """The console of one app: its services, sessions, login limiter and templates."""

    def __init__(self, services: Services, nav: Sequence[tuple[str, str]]) -> None:
        settings = services.settings
        self.services = services
        self.settings = settings
        self.sessions = Sessions(settings)
        self.limiter = LoginLimiter(
            settings.console_login_attempts, settings.console_login_window_seconds
        )
        self.nav = list(nav)
        self.chart = views.ChartCache()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters.update(views.FILTERS)

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        session: Session | None = request.scope.get("console_session")
        context.update(
            nav=self.nav,
            path=request.url.path,
            csrf=self.sessions.csrf_token(session) if session else "",
            logged_in=bool(session and session.authenticated),
        )
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    async def db(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking database function in the thread pool (never on the event loop)."""
        return await run_in_threadpool(work, *args, **kwargs)

    def page(self, handler: Handler) -> Endpoint:
        """A GET page: a login is required (else a redirect to it)."""
        return self._guarded(handler, check_csrf=False)

    def action(self, handler: Handler) -> Endpoint:
        """A POST: a login and the session's CSRF token are required (403 without the token)."""
        return self._guarded(handler, check_csrf=True)

    def _guarded(self, handler: Handler, *, check_csrf: bool) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            session = self.sessions.read(request.cookies.get(COOKIE))
            if session is None or not session.authenticated:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return secured(RedirectResponse(f"{LOGIN}?next={quote(target)}", 303))
            request.scope["console_session"] = session
            if check_csrf:
                form = await request.form()
                token = form.get("csrf")
                if not self.sessions.csrf_ok(session, token if isinstance(token, str) else None):
                    log.warning("console_csrf_refused", path=request.url.path)
                    return secured(self.render(request, "error.html", 403, error=CSRF_ERROR))
            return secured(await self._boundary(handler, request))

        return endpoint

    async def _boundary(self, handler: Handler, request: Request) -> Response:
        try:
            return await handler(self, request)
        except TimedifyError as exc:  # an expected failure: its message, for the operator
            status = 404 if getattr(exc, "exit_code", 1) == 5 else 400
            return self.render(request, "error.html", status, error=str(exc))
        except SQLAlchemyError as exc:
            log.warning("console_database_failed", path=request.url.path, error=type(exc).__name__)
            return self.render(request, "error.html", 503, error="the database is unavailable")


CSRF_ERROR = "This form has expired or did not come from the console: reload the page."


def secured(response: Response) -> Response:
    """`response` with the console's security headers."""
    response.headers.update(SECURITY_HEADERS)
    return response


class SecuredStatic:
    """An ASGI app (the static files) whose answers carry the security headers too."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in self._headers}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in names]
                message = {**message, "headers": [*headers, *self._headers]}
            await send(message)

        await self._app(scope, receive, send_secured)


def client_address(request: Request) -> str:
    """The peer's address (behind a proxy, the proxy's unless uvicorn trusts its headers)."""
    return request.client.host if request.client else "unknown"
