"""The ASGI application: built by `create_app(settings)`, no import-time globals.

Webhook paths go straight to the pure-ASGI `WebhookEndpoint` (the hot path skips the framework);
everything else (health, metrics) is a small Starlette app whose lifespan owns the committer,
the health probe and the in-process worker.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from timedify import __version__, migrate
from timedify.db import engine_for
from timedify.ingest import webhooks
from timedify.ingest.committer import GroupCommitter
from timedify.ingest.endpoint import WebhookEndpoint
from timedify.logs import get_logger
from timedify.metrics import Metrics
from timedify.processing.worker import Worker
from timedify.settings import Settings
from timedify.shopify.contracts import BillingReader, TokenExchanger
from timedify.shopify.services import ShopifyServices
from timedify.store import events
from timedify.web import app_home, console, smoke
from timedify.web.health import HealthDocument, HealthProbe

log = get_logger("timedify.web.app")
HEALTH_JSON = "application/health+json"


@dataclass
class Services:
    """What the routes share; built once per app, owned by its lifespan."""

    settings: Settings
    engine: Engine
    read_engine: Engine
    committer: GroupCommitter
    metrics: Metrics
    health: HealthProbe
    wakeup: threading.Event = field(default_factory=threading.Event)
    background: list[Any] = field(default_factory=list)
    # `alive()` of the background services that have one (the in-process worker), for /health.
    alive_checks: list[Callable[[], bool]] = field(default_factory=list)
    # Tokens, Admin API and billing; None while no TOKEN_ENCRYPTION_KEY is set.
    shopify: ShopifyServices | None = None


# A background service the lifespan starts and stops (the in-process worker is one).
BackgroundFactory = Callable[[Services], Any]


def create_app(
    settings: Settings,
    *,
    background: list[BackgroundFactory] | None = None,
    exchanger: TokenExchanger | None = None,
    billing: BillingReader | None = None,
) -> Any:
    """The service as one ASGI callable. The app home (S1, S3, S7) exchanges tokens and reads
    billing through `exchanger`/`billing`, by default the product's (`ShopifyServices`)."""
    services = _build_services(settings)
    if services.shopify is not None:
        exchanger = exchanger or services.shopify.tokens
        billing = billing or services.shopify.billing
    endpoint = WebhookEndpoint(settings, services.committer, services.metrics)
    health = _HealthRoutes(services.health)
    site = Starlette(
        routes=[
            Route("/health/webhooks", _webhooks_health, methods=["GET"]),
            Route("/metrics", _metrics, methods=["GET"]),
            *smoke.routes(),
            *app_home.routes(
                settings, exchanger or app_home.NOT_WIRED, billing or app_home.NOT_WIRED
            ),
            *console.routes(services),
        ],
        lifespan=_lifespan(services, background or []),
    )
    site.state.services = services

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"].rstrip("/")
            if path == webhooks.UNIFIED_PATH or path in webhooks.TOPIC_PATHS:
                await endpoint(scope, receive, send)
                return
            if path in _HealthRoutes.PATHS:
                await health(scope, send)
                return
        await site(scope, receive, send)

    app.services = services  # type: ignore[attr-defined]
    app.site = site  # type: ignore[attr-defined]
    return app


def serves(app: Any, path: str) -> bool:
    """Whether `app` (from `create_app`) answers `path`: its fast paths or a route of its site
    (`config check` holds shopify.app.toml's URIs against this, S9)."""
    path = path.rstrip("/") or "/"
    if path == webhooks.UNIFIED_PATH or path in webhooks.TOPIC_PATHS or path in _HealthRoutes.PATHS:
        return True
    scope = {"type": "http", "path": path, "method": "GET"}
    return any(route.matches(scope)[0] is not Match.NONE for route in app.site.routes)


def background_services(settings: Settings) -> list[BackgroundFactory]:
    """What runs beside the HTTP server: the worker, unless WORKER_IN_PROCESS=false."""
    return [in_process_worker] if settings.worker_in_process else []


def in_process_worker(services: Services) -> Worker:
    """The worker sharing the app's engine, woken by every ingest commit, counting its metrics."""
    shopify = services.shopify

    def busy() -> bool:
        # The billing re-reads wait while webhooks arrive or a backlog is drained.
        return services.committer.in_burst() or worker.has_backlog()

    worker = Worker(
        services.settings,
        services.engine,
        wakeup=services.wakeup,
        metrics=services.metrics,
        jobs=shopify.worker_jobs() if shopify is not None else [],
        after_commit=shopify.followups(busy=busy) if shopify is not None else None,
        acknowledgements=services.committer,
    )
    return worker


def _build_services(settings: Settings) -> Services:
    engine = engine_for(settings)
    read_engine = engine_for(
        settings,
        read_only=True,
        statement_timeout_ms=int(settings.health_timeout_seconds * 1000),
        busy_timeout_ms=min(settings.db_busy_timeout_ms, 250),
        pool_size=2,
    )
    metrics = Metrics()
    wakeup = threading.Event()

    def committed(count: int) -> None:
        metrics.commit_batch.observe(count)
        wakeup.set()

    committer = GroupCommitter(
        engine,
        writers=settings.ingest_writers,
        max_queue=settings.ingest_max_queue,
        on_commit=committed,
    )
    alive_checks: list[Callable[[], bool]] = []

    def worker_alive() -> bool | None:
        return all(check() for check in alive_checks) if alive_checks else None

    probe = HealthProbe(
        settings, read_engine, committer.state, migrate.head_revision(), worker_alive
    )
    return Services(
        settings,
        engine,
        read_engine,
        committer,
        metrics,
        probe,
        wakeup,
        alive_checks=alive_checks,
        shopify=ShopifyServices.optional(settings, engine, metrics),
    )


def _lifespan(
    services: Services, factories: list[BackgroundFactory]
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        services.committer.start()
        services.background = [factory(services) for factory in factories]
        for item in services.background:
            item.start()
            if callable(getattr(item, "alive", None)):
                services.alive_checks.append(item.alive)
        # Everything built at start-up lives as long as the process: move it out of the cyclic
        # GC's reach, so its collections stop walking it (they were the ack p99's long tail).
        gc.collect()
        gc.freeze()
        log.info("service_started", version=__version__, database=_db_kind(services.settings))
        try:
            yield
        finally:
            for item in reversed(services.background):
                await run_in_threadpool(item.stop)
            await run_in_threadpool(services.committer.stop)
            services.health.close()
            services.engine.dispose()
            services.read_engine.dispose()
            log.info("service_stopped")

    return lifespan


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


class _HealthRoutes:
    """`/health` and `/health/live` as plain ASGI, like the webhook paths (SPEC H1).

    Deploy gates, load balancers and monitors poll these continuously; the framework's routing
    and response objects cost more than the answer itself (the document is cached, see
    `HealthDocument`).
    """

    PATHS = frozenset({"/health", "/health/live"})
    _LIVE = orjson.dumps({"status": "pass", "releaseId": __version__})
    _HEADERS = [(b"content-type", HEALTH_JSON.encode()), (b"cache-control", b"no-store")]

    def __init__(self, probe: HealthProbe) -> None:
        self._probe = probe
        self._document = HealthDocument(__version__)

    async def __call__(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            headers = [(b"allow", b"GET, HEAD"), (b"content-length", b"18")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b"Method Not Allowed"})
            return
        if scope["path"].rstrip("/") == "/health/live":
            status, body = 200, self._LIVE
        else:
            status, body = self._document.render(await self._probe.run())
        headers = [*self._HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _webhooks_health(request: Request) -> Response:
    services = _services(request)
    window = timedelta(hours=_window_hours(request))
    since = datetime.now(UTC) - window

    def query() -> dict[str, events.TopicActivity]:
        with services.read_engine.connect() as conn:
            return events.activity_by_topic(conn, since)

    try:
        activity = await run_in_threadpool(query)
    except Exception as exc:  # the database is the only dependency; say so and fail
        log.warning("health_webhooks_failed", error_class="db", error_type=type(exc).__name__)
        return JSONResponse({"status": "fail", "output": "database unavailable"}, status_code=503)
    topics = {}
    for topic in sorted(set(webhooks.TOPICS) | set(activity)):
        item = activity.get(topic, events.TopicActivity())
        topics[topic] = {
            "last_received_at": _iso(item.last_received_at),
            "last_processed_at": _iso(item.last_processed_at),
            "pending": item.pending,
            "oldest_pending_age_seconds": _age(item.oldest_pending_at),
            "received_in_window": item.received_in_window,
            "failures_in_window": item.failures_in_window,
            "dead_letters_in_window": item.dead_letters_in_window,
        }
    return JSONResponse({"window_hours": window.total_seconds() / 3600, "topics": topics})


async def _metrics(request: Request) -> Response:
    services = _services(request)
    token = services.settings.metrics_token
    if token is not None:
        provided = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(provided, token.get_secret_value().encode()):
            return Response(
                "unauthorized\n", status_code=401, headers={"www-authenticate": "Bearer"}
            )
    await run_in_threadpool(_refresh_gauges, services)
    return Response(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def _refresh_gauges(services: Services) -> None:
    try:
        with services.read_engine.connect() as conn:
            backlog = events.backlog_by_topic(conn)
            dead = events.dead_letters_by_topic(conn)
    except Exception:  # metrics still render the in-memory counters when the database is away
        return
    for topic in set(webhooks.TOPICS) | set(backlog):
        services.metrics.backlog.labels(topic).set(
            backlog[topic].pending if topic in backlog else 0
        )
    for topic in set(webhooks.TOPICS) | set(dead):
        services.metrics.dead_letters.labels(topic).set(dead.get(topic, 0))


def _window_hours(request: Request) -> float:
    try:
        return min(max(float(request.query_params.get("hours", "24")), 0.01), 24 * 90)
    except ValueError:
        return 24.0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _age(value: datetime | None) -> float | None:
    return round((datetime.now(UTC) - value).total_seconds(), 1) if value else None


def _db_kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"
