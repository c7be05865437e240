"""The embedded app home (SPEC S1) and the session-token API guard (S2).

`GET /app` is the app's `application_url`. The admin loads it in an iframe with `shop`, `host`
and `embedded=1`; a request without a session token is sent to the bounce page, whose App
Bridge loads the same URL again with a fresh `id_token`. With a verified token the shop gets an
offline token (S3, through the injected `TokenExchanger`), its billing state is read (S7,
`BillingReader`) and the page is rendered on the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from timedify.ingest.webhooks import valid_shop_domain
from timedify.logs import get_logger
from timedify.settings import Settings
from timedify.shopify.contracts import (
    BillingReader,
    InvalidSubjectToken,
    ShopifyAuthError,
    ShopifyError,
    ShopifyUnavailable,
    SubscriptionState,
    TokenExchanger,
)
from timedify.shopify.session_tokens import InvalidSessionToken, SessionToken, SessionTokenVerifier
from timedify.web import embedded, i18n

TEMPLATES = Path(__file__).parent / "templates"
APP_PATH = "/app"
BOUNCE_PATH = "/auth/session-token"
BILLING_MAX_AGE_SECONDS = 300
RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
NO_STORE = {"Cache-Control": "no-store"}

# Which sentence of the error page explains a refusal.
_MESSAGES = {400: "error.invalid_request", 401: "error.invalid_session", 403: "error.shop_mismatch"}


class _NotWired:
    """Stands in for the token exchange and billing while `create_app` is given none: the page
    then answers 503 and the log line names what is missing, instead of pretending."""

    def ensure_offline_token(self, shop: str, id_token: str) -> None:
        raise ShopifyUnavailable("no TokenExchanger was given to create_app")

    def subscription_state(self, shop: str, *, max_age_seconds: float = 0) -> SubscriptionState:
        raise ShopifyUnavailable("no BillingReader was given to create_app")


NOT_WIRED = _NotWired()


def routes(
    settings: Settings, exchanger: TokenExchanger, billing: BillingReader
) -> list[BaseRoute]:
    """`/`, `/app`, `/auth/session-token` and `/api/ping`, bound to their dependencies."""
    home = AppHome(settings, exchanger, billing)
    return [
        Route("/", home.root, methods=["GET"]),
        Route(APP_PATH, home.app, methods=["GET"]),
        Route(BOUNCE_PATH, home.bounce, methods=["GET"]),
        Route("/api/ping", home.ping, methods=["GET"]),
    ]


class AppHome:
    """The handlers; each translates a request into one decision of the rules above."""

    def __init__(
        self, settings: Settings, exchanger: TokenExchanger, billing: BillingReader
    ) -> None:
        self._settings = settings
        self._exchanger = exchanger
        self._billing = billing
        self._verifier = SessionTokenVerifier.for_settings(settings)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates = Jinja2Templates(env=env)
        # Bound per app rather than at import, so the logging configuration in force when the
        # app is built is the one its lines go through.
        self._log = get_logger("timedify.web.app_home")

    async def root(self, request: Request) -> Response:
        """`GET /`: the app lives on `/app`; the admin's query goes along."""
        query = request.url.query
        return _redirect(APP_PATH + (f"?{query}" if query else ""))

    async def app(self, request: Request) -> Response:
        """`GET /app`: bounce, refuse, or render the page for a verified shop."""
        params = request.query_params
        locale = i18n.locale_from(params.get("locale"))
        shop = params.get("shop", "")
        if not valid_shop_domain(shop):
            return self._refuse(request, 400, "invalid_shop", locale)
        if not embedded.valid_host(params.get("host")):
            return self._refuse(request, 400, "invalid_host", locale)
        id_token = params.get("id_token", "")
        if not id_token:
            return self._without_token(request, shop)
        try:
            session = self._verifier.verify(id_token)
        except InvalidSessionToken as exc:
            if exc.expired:  # only stale: a fresh token fixes it
                self._log.info("app_home_bounced", shop=shop, reason=exc.reason)
                return self._without_token(request, shop)
            return self._refuse(request, 401, exc.reason, locale)
        if session.shop != shop:
            return self._refuse(request, 403, "shop_mismatch", locale)
        return await self._render(request, session, id_token, locale)

    async def bounce(self, request: Request) -> Response:
        """`GET /auth/session-token`: only App Bridge, which reloads `shopify-reload`."""
        params = request.query_params
        # Nothing here is verified yet; the page holds no content, so framing it under the shop
        # it names reveals nothing - and App Bridge cannot run in the admin unless it is framed.
        shop = params.get("shop")
        frame_shop = shop if shop and valid_shop_domain(shop) else None
        locale = i18n.locale_from(params.get("locale"))
        return self._html(request, "bounce.html", locale, frame_shop)

    async def ping(self, request: Request) -> Response:
        """`GET /api/ping`: the shop of the bearer's session token, or the 401 of S2."""
        session = self.api_session(request)
        if session is None:
            return _invalid_session_response()
        return JSONResponse({"shop": session.shop}, headers=NO_STORE)

    def api_session(self, request: Request) -> SessionToken | None:
        """The verified session token of an `/api/*` request (None: answer with the 401)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        reason = "missing_token"
        if scheme.lower() == "bearer" and token.strip():
            try:
                return self._verifier.verify(token.strip())
            except InvalidSessionToken as exc:
                reason = exc.reason
        self._log.info("api_rejected", path=request.url.path, status=401, reason=reason)
        return None

    def _without_token(self, request: Request, shop: str) -> Response:
        """No usable token: inside the admin, fetch one; outside it, open the app there."""
        if request.query_params.get("embedded") == "1":
            return _redirect(embedded.bounce_location(request, BOUNCE_PATH))
        return _redirect(embedded.admin_app_url(shop, self._settings.shopify_api_key))

    async def _render(
        self, request: Request, session: SessionToken, id_token: str, locale: str
    ) -> Response:
        shop = session.shop
        try:
            await run_in_threadpool(self._exchanger.ensure_offline_token, shop, id_token)
            state = await self._subscription(shop)
        except InvalidSubjectToken:
            self._log.info("app_home_bounced", shop=shop, reason="invalid_subject_token")
            return _redirect(embedded.bounce_location(request, BOUNCE_PATH))
        except ShopifyAuthError as exc:
            return self._failed(request, 502, exc, shop, locale)
        except ShopifyError as exc:  # unavailable, or nothing more specific to say
            return self._failed(request, 503, exc, shop, locale)
        self._log.info("app_home_served", shop=shop, subscription=_state_name(state))
        return self._html(request, "home.html", locale, shop, **self._page(shop, state, locale))

    async def _subscription(self, shop: str) -> SubscriptionState | None:
        """The billing state; None when Shopify cannot say now (the page still helps)."""
        try:
            return await run_in_threadpool(
                self._billing.subscription_state, shop, max_age_seconds=BILLING_MAX_AGE_SECONDS
            )
        except ShopifyUnavailable as exc:
            self._log.warning(
                "app_home_billing_unavailable",
                shop=shop,
                error_class=exc.error_class,
                error_type=type(exc).__name__,
            )
            return None

    def _page(self, shop: str, state: SubscriptionState | None, locale: str) -> dict[str, Any]:
        api_key = self._settings.shopify_api_key
        end = state.current_period_end if state is not None else None
        return {
            "state": state,
            "period_end": i18n.format_date(end, locale) if end else None,
            "plan_url": embedded.plan_page_url(shop, self._settings.shopify_app_handle),
            "editor_url": embedded.theme_editor_url(shop, api_key),
        }

    def _failed(
        self, request: Request, status: int, exc: ShopifyError, shop: str, locale: str
    ) -> Response:
        # The exception's text may quote Shopify's answer: only its class is logged.
        self._log.warning(
            "app_home_failed",
            shop=shop,
            status=status,
            error_class=exc.error_class,
            error_type=type(exc).__name__,
        )
        auth = isinstance(exc, ShopifyAuthError)
        message = "error.shopify_auth" if auth else "error.shopify_unavailable"
        return self._error_page(request, status, exc.error_class, message, locale, shop)

    def _refuse(self, request: Request, status: int, reason: str, locale: str) -> Response:
        """A request that proves no shop: its status, one log line, a page nobody may frame."""
        self._log.info("app_home_rejected", path=request.url.path, status=status, reason=reason)
        return self._error_page(request, status, reason, _MESSAGES[status], locale, None)

    def _error_page(
        self,
        request: Request,
        status: int,
        reason: str,
        message: str,
        locale: str,
        shop: str | None,
    ) -> Response:
        context = {"reason": reason, "message": message}
        return self._html(request, "error.html", locale, shop, status=status, **context)

    def _html(
        self,
        request: Request,
        name: str,
        locale: str,
        frame_shop: str | None,
        *,
        status: int = 200,
        **context: Any,
    ) -> Response:
        values = {
            "locale": locale,
            "t": i18n.translator(locale),
            "api_key": self._settings.shopify_api_key,
            **context,
        }
        headers = {**NO_STORE, "Content-Security-Policy": embedded.frame_ancestors(frame_shop)}
        return self._templates.TemplateResponse(
            request, f"app_home/{name}", values, status_code=status, headers=headers
        )


def _redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=302, headers=NO_STORE)


def _invalid_session_response() -> Response:
    return JSONResponse(
        {"error": "invalid_session_token"},
        status_code=401,
        headers={**NO_STORE, RETRY_HEADER: "1"},
    )


def _state_name(state: SubscriptionState | None) -> str:
    if state is None:
        return "unknown"
    return "active" if state.active else "inactive"
