"""`timedify logs-watch`: a live, coloured view of the JSON logs (O4)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from timedify.cli import console
from timedify.errors import TimedifyError
from timedify.toolkit import logs_watch as watching

HELP = """Follow the structured logs from a file (like tail -F) or stdin (-), one readable,
coloured line per event (colour only on a terminal). Filters combine.

Examples:

\b
  timedify serve | timedify logs-watch -
  fly logs | timedify logs-watch - --errors --topic app/uninstalled
  timedify logs-watch tmp/timedify.log --webhooks --seconds 60

The service writes a log file only when LOG_FILE is set (LOG_FILE=timedify.log writes
tmp/timedify.log, inside TMP_DIR); otherwise its JSON lines go to stdout only, so pipe them in.

Exit codes: 0 stopped (end of input, --seconds elapsed or Ctrl-C), 1 the file cannot be read."""


def register(app: typer.Typer) -> None:
    app.command(
        "logs-watch", help=HELP, short_help="Follow the JSON logs as readable, coloured lines"
    )(logs_watch)


def logs_watch(
    source: Annotated[str, typer.Argument(help="Log file, or - for stdin.")] = "-",
    errors: Annotated[bool, typer.Option("--errors", help="Only warnings and errors.")] = False,
    webhooks: Annotated[bool, typer.Option("--webhooks", help="Only webhook events.")] = False,
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
    shop: Annotated[str | None, typer.Option(help="Only this shop domain.")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after N seconds.")] = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Show the file from its beginning.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print matching lines as JSON.")] = False,
) -> None:
    filters = watching.Filters(errors, webhooks, topic, shop)
    stop_at = time.monotonic() + seconds if seconds is not None else None
    if source == "-":
        lines = watching.stream_lines(sys.stdin.buffer, stop_at)
    else:
        path = Path(source)
        if not path.is_file():
            raise TimedifyError(
                f"cannot read {path}: no such file (the service writes one only when LOG_FILE "
                "is set, in TMP_DIR; or pipe its output: timedify serve | timedify logs-watch -)"
            )
        lines = watching.follow(path, from_start, stop_at)
    for line in lines:
        record = watching.parse(line)
        if not filters.matches(record):
            continue
        if json and record is not None:
            sys.stdout.write(line[line.find(b"{") :].decode(errors="replace") + "\n")
            sys.stdout.flush()
        elif record is None:
            console.plain(line.decode(errors="replace"))
        else:
            console.log_line(*watching.render(record))
