"""`timedify serve`: the webhook service (O1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from timedify.settings import Settings

# The service's modules are imported when `serve` runs, not when any `timedify` command starts:
# toolkit commands such as `alerting-check` must start fast.


def register(app: typer.Typer) -> None:
    app.command(
        help="Start the webhook service (with the worker in-process by default).\n\n"
        "Example: timedify serve --port 8000\n\n"
        "Exit codes: 0 stopped cleanly, 1 the service stopped while starting (its log lines "
        "say why), 2 invalid configuration or HOST:PORT unusable (e.g. the port is in use), "
        "3 database behind (run `timedify migrate`) or migrated by a newer release, "
        "4 database unreachable."
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

    from timedify.web import server

    server.ensure_can_listen(settings.host, settings.port)
    prepare(settings)
    server.run(settings)


def prepare(settings: Settings) -> None:
    """Logging and error reporting on, and refuse a database whose schema is behind (O1)."""
    from timedify import migrate
    from timedify.db import engine_for
    from timedify.errorreporting import init_sentry
    from timedify.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, settings.log_path())
    init_sentry(settings)
    engine = engine_for(settings)
    try:
        migrate.require_current(engine)
    finally:
        engine.dispose()
