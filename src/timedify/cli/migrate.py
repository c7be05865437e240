"""`timedify migrate`: apply the schema migrations; the release command (O1)."""

from __future__ import annotations

from typing import Annotated

import typer

from timedify.cli import console


def register(app: typer.Typer) -> None:
    app.command(
        "migrate",
        help="Apply pending database migrations (the release command), or report with --status."
        "\n\nExample: timedify migrate --status --json\n\n"
        "Exit codes: 0 up to date (after applying), 1 --status found pending migrations, "
        "2 invalid configuration, 3 the database was migrated by a newer release, "
        "4 database unreachable or a migration failed.",
    )(migrate)


def migrate(
    status: Annotated[bool, typer.Option("--status", help="Only report, change nothing.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    # Imported here: every `timedify` start registers all commands, and alembic/SQLAlchemy
    # would slow down the ones that do not need them.
    from timedify import migrate as migrations
    from timedify.db import engine_for
    from timedify.settings import load_settings

    settings = load_settings()
    engine = engine_for(settings)
    try:
        before = migrations.status(engine)
        if not status and before.pending:
            migrations.upgrade(engine)
        after = before if status else migrations.status(engine)
    finally:
        engine.dispose()
    if json:
        console.print_json(
            {
                "current": after.current,
                "head": after.head,
                "pending": list(after.pending),
                "up_to_date": after.up_to_date,
                "applied": [] if status else list(before.pending),
            }
        )
    elif status:
        console.status_line(
            after.up_to_date or None,
            f"database at {after.current or 'none'}, code at {after.head}"
            + (
                ""
                if after.up_to_date
                else f" ({len(after.pending)} pending: run `timedify migrate`)"
            ),
        )
    elif before.pending:
        console.status_line(True, f"applied {', '.join(before.pending)}; now at {after.current}")
    else:
        console.status_line(True, f"already up to date at {after.current}")
    if status and not after.up_to_date:
        raise typer.Exit(1)
