"""Login and logout (C1): the only console endpoints reachable without a session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from timedify.web.console.auth import COOKIE, Session
from timedify.web.console.common import (
    CSRF_ERROR,
    LOGIN,
    PREFIX,
    Console,
    client_address,
    log,
    secured,
)


async def login_form(console: Console, request: Request) -> Response:
    """The form; it hands out an anonymous session so that the form carries a CSRF token."""
    session = console.sessions.read(request.cookies.get(COOKIE))
    if session is not None and session.authenticated:
        return secured(RedirectResponse(_next(request.query_params.get("next")), 303))
    return _form(console, request, session, 200)


async def login(console: Console, request: Request) -> Response:
    """Check the CSRF token, the client's failure count, then the password."""
    session = console.sessions.read(request.cookies.get(COOKIE))
    form = await request.form()
    token, password = form.get("csrf"), form.get("password")
    if session is None or not console.sessions.csrf_ok(
        session, token if isinstance(token, str) else None
    ):
        return _form(console, request, None, 403, error=CSRF_ERROR)
    client = client_address(request)
    wait = console.limiter.retry_after(client)
    if wait:
        log.warning("console_login_limited", client=client, retry_after_seconds=wait)
        response = _form(console, request, session, 429, error=f"Too many attempts: wait {wait} s.")
        response.headers["retry-after"] = str(wait)
        return response
    if not isinstance(password, str) or not console.sessions.password_ok(password):
        console.limiter.failed(client)
        log.warning("console_login_failed", client=client)  # never the password
        return _form(console, request, session, 401, error="Wrong password.")
    console.limiter.succeeded(client)
    _session, cookie = console.sessions.issue(authenticated=True)
    log.info("console_login", client=client)
    response = RedirectResponse(_next(str(form.get("next") or "")), 303)
    _set_cookie(console, response, cookie)
    return secured(response)


async def logout(console: Console, request: Request) -> Response:
    """End the session (a POST with its CSRF token, see `Console.action`)."""
    session: Session = request.scope["console_session"]
    console.sessions.revoke(session)
    log.info("console_logout", client=client_address(request))
    response = RedirectResponse(LOGIN, 303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


def _form(
    console: Console, request: Request, session: Session | None, status: int, error: str = ""
) -> Response:
    cookie = None
    if session is None:
        session, cookie = console.sessions.issue(authenticated=False)
    request.scope["console_session"] = session
    next_page = request.query_params.get("next") or ""
    response = console.render(request, "login.html", status, error=error, next=next_page)
    if cookie is not None:
        _set_cookie(console, response, cookie)
    return secured(response)


def _set_cookie(console: Console, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=console.sessions.max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=console.sessions.secure,
    )


def _next(target: str | None) -> str:
    """Where to go after the login: a console page only (never another site)."""
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX
