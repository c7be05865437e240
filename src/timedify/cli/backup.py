"""`timedify backup` and `timedify backup verify FILE` (O10)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timedify.cli import console
from timedify.errors import TimedifyError

BACKUP_HELP = """Make a consistent backup while the service runs: SQLite through the online
backup API, PostgreSQL through pg_dump (custom format; found on PATH, else PG_BINDIR, else
/usr/lib/postgresql/*/bin). Default file: $TMP_DIR/backups/timedify-<UTC time>.sqlite3|.dump.

Example: timedify backup --output /backups/t.sqlite3 && timedify backup verify /backups/t.sqlite3

Exit codes: 0 written, 1 the backup failed, 2 invalid configuration."""

VERIFY_HELP = """Restore drill: restore FILE into a throwaway database (a copy for SQLite, a
temporary database on the DATABASE_URL server for PostgreSQL), check integrity, the migration
revision and the row count of every table, then remove it.

Example: timedify backup verify tmp/backups/timedify-20261128T060000Z.sqlite3

Exit codes: 0 usable, 1 corrupt or not a Timedify backup, 4 the PostgreSQL server is
unreachable."""


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=BACKUP_HELP, invoke_without_command=True)
    group.callback(invoke_without_command=True)(backup)
    group.command("verify", help=VERIFY_HELP)(verify)
    app.add_typer(group, name="backup")


def backup(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option(help="Where to write the backup.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from timedify.cli.common import command_logging
    from timedify.logs import get_logger
    from timedify.toolkit import backup as backups

    log = get_logger("timedify.toolkit.backup")
    settings = command_logging()
    target = output or backups.default_path(settings)
    result = backups.make_backup(settings, target)
    log.info("backup_written", kind=result.kind, size=result.size, file=str(result.path))
    if json:
        console.print_json({"path": str(result.path), "kind": result.kind, "bytes": result.size})
    else:
        console.status_line(
            True, f"{result.kind} backup written: {result.path} ({result.size} bytes)"
        )


def verify(
    file: Annotated[Path, typer.Argument(help="The backup file.")],
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    from timedify.settings import Settings, load_settings
    from timedify.toolkit import backup as backups

    settings: Settings | None
    try:
        settings = load_settings()
    except TimedifyError:
        settings = None  # a SQLite file is verified without any configuration
    result = backups.verify(file, settings)
    if json:
        console.print_json(
            {
                "path": str(result.path),
                "kind": result.kind,
                "usable": True,
                "revision": result.revision,
                "head": result.head,
                "integrity": result.integrity,
                "counts": result.counts,
            }
        )
        return
    console.status_line(True, f"{result.kind} backup restored: integrity {result.integrity}")
    note = (
        ""
        if result.at_head
        else f" (code is at {result.head}: run `timedify migrate` after restoring)"
    )
    console.status_line(
        True if result.at_head else None, f"migration revision {result.revision}{note}"
    )
    console.grid("rows", ["table", "rows"], sorted(result.counts.items()))
