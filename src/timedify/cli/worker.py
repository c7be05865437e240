"""`timedify worker`: the worker as its own process (O1, P1)."""

from __future__ import annotations

import signal
from types import FrameType

import typer


def register(app: typer.Typer) -> None:
    app.command(
        help="Process stored webhook events (run any number of these, on any machines).\n\n"
        "Stops gracefully on SIGTERM/SIGINT: finishes the current event and releases the rest."
        "\n\nExample: WORKER_BATCH_SIZE=20 timedify worker\n\n"
        "Exit codes: 0 stopped cleanly, 2 invalid configuration, 3 database behind "
        "(run `timedify migrate`), 4 database unreachable."
    )(worker)


def worker() -> None:
    # Imported here so that other `timedify` commands start without the worker's stack.
    from timedify.cli.service import prepare
    from timedify.db import engine_for
    from timedify.processing.worker import Worker
    from timedify.settings import load_settings
    from timedify.shopify.services import ShopifyServices

    settings = load_settings()
    prepare(settings)
    engine = engine_for(settings)
    shopify = ShopifyServices.optional(settings, engine)
    runner = Worker(
        settings,
        engine,
        jobs=shopify.worker_jobs() if shopify is not None else [],
        # The billing re-reads wait while a backlog is drained (one read per shop after it).
        after_commit=(
            shopify.followups(busy=lambda: runner.has_backlog()) if shopify is not None else None
        ),
    )

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        runner.run()
    finally:
        engine.dispose()
