"""`timedify serve`: the webhook service (O1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from timedify.processing.worker import Worker
    from timedify.settings import Settings
    from timedify.web.app import BackgroundFactory, Services

# The service's modules are imported when `serve` runs, not when any `timedify` command starts:
# toolkit commands such as `alerting-check` must start fast.


def register(app: typer.Typer) -> None:
    app.command(
        help="Start the webhook service (with the worker in-process by default).\n\n"
        "Example: timedify serve --port 8000\n\n"
        "Exit codes: 0 stopped cleanly, 2 invalid configuration, 3 database behind "
        "(run `timedify migrate`), 4 database unreachable."
    )(serve)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [env: HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env: PORT].")] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker", help="Run the worker in this process [env: WORKER_IN_PROCESS]."
        ),
    ] = None,
) -> None:
    from timedify.settings import load_settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if worker is not None:
        overrides["worker_in_process"] = worker
    settings = load_settings(**overrides)
    prepare(settings)
    run_server(settings, background_services(settings))


def prepare(settings: Settings) -> None:
    """Logging and error reporting on, and refuse a database whose schema is behind (O1)."""
    from timedify import migrate
    from timedify.db import engine_for
    from timedify.errorreporting import init_sentry
    from timedify.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, _log_file(settings))
    init_sentry(settings)
    engine = engine_for(settings)
    try:
        migrate.require_current(engine)
    finally:
        engine.dispose()


def background_services(settings: Settings) -> list[BackgroundFactory]:
    """What runs beside the HTTP server: the worker, unless WORKER_IN_PROCESS=false."""
    return [in_process_worker] if settings.worker_in_process else []


def in_process_worker(services: Services) -> Worker:
    """The worker sharing the app's engine, woken by every ingest commit, counting its metrics."""
    from timedify.processing.worker import Worker

    return Worker(
        services.settings, services.engine, wakeup=services.wakeup, metrics=services.metrics
    )


def uvicorn_options(header_read_timeout_seconds: float | None = None) -> dict[str, Any]:
    """How uvicorn serves the app; `bench/` serves its raw-ASGI baseline with exactly these.

    `header_read_timeout_seconds`: the bound on a request head (`slowclients`); None is the
    setting's default.
    """
    from timedify.ingest.slow_clients import head_timeout_protocol
    from timedify.settings import Settings

    if header_read_timeout_seconds is None:
        header_read_timeout_seconds = Settings.model_fields["header_read_timeout_seconds"].default
    return {
        "loop": "uvloop",
        "http": head_timeout_protocol(header_read_timeout_seconds),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": 2048,
        "backlog": 4096,
    }


def run_server(settings: Settings, background: list[BackgroundFactory]) -> None:
    import uvicorn

    from timedify.web.app import create_app

    uvicorn.run(
        create_app(settings, background=background),
        host=settings.host,
        port=settings.port,
        **uvicorn_options(settings.header_read_timeout_seconds),
    )


def _log_file(settings: Settings):  # type: ignore[no-untyped-def]
    return settings.tmp_dir / settings.log_file if settings.log_file else None
