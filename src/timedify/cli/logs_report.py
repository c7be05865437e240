"""`timedify logs-report`: the weekly log review as markdown or JSON."""

from __future__ import annotations

import enum
import sys
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from timedify.cli import console
from timedify.errors import TimedifyError
from timedify.toolkit import alerting_check, logs_report

HELP = """The weekly log review: reads the JSON log lines of the --since window (plain or as
`fly logs` prints them) and prints webhooks received / accepted / rejected per topic and reason,
processing outcomes, dead letters opened and resolved, error classes with a sample line each,
the Shopify Admin API's 429s and 5xx, acknowledgement p50/p95/p99 and the shops with the most
failure lines. Only identifier-shaped values are shown: no personal data, no token.

Example: fly logs --no-tail | timedify logs-report --logs - --since 7d > review.md

Exit codes: 0 report printed (and posted with --notify), 1 the log cannot be read, a process
reading it died (try --jobs 1) or the post failed, 2 a malformed option."""


class Format(enum.StrEnum):
    MARKDOWN = "markdown"
    JSON = "json"


class LogsReportError(TimedifyError):
    """The log could not be read, or the report not posted."""


class OptionError(TimedifyError):
    exit_code = 2


def register(app: typer.Typer) -> None:
    app.command("logs-report", help=HELP)(logs_report_command)


def logs_report_command(
    logs: Annotated[str, typer.Option(help="Log file to read, or - for stdin.")] = "-",
    since: Annotated[str, typer.Option(help="Window: 7d, 24h, 90m.")] = "7d",
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.MARKDOWN,
    top: Annotated[int, typer.Option(help="Rows in the error and shop lists.", min=1)] = 10,
    notify: Annotated[
        str | None, typer.Option(help="Also post the markdown to this Slack-compatible webhook.")
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(help="Processes parsing a log over 16 MiB; 0: one per CPU.", min=0),
    ] = 0,
) -> None:
    try:
        window = alerting_check.parse_window(since)
    except ValueError as exc:
        raise OptionError(f"--since: {exc}") from None
    report = _read(logs, alerting_check.since(window), jobs or logs_report.default_jobs())
    doc = logs_report.to_json(report, limit=top)
    markdown = logs_report.to_markdown(doc)
    if format is Format.JSON:
        console.print_json(doc)
    else:
        sys.stdout.write(markdown)
        sys.stdout.flush()
    if notify:
        _notify(notify, markdown)


def _read(source: str, since: datetime, jobs: int) -> logs_report.LogsReport:
    try:
        if source == "-":
            return logs_report.read(sys.stdin.buffer, since, jobs)
        return logs_report.read_path(Path(source), since, jobs)
    except OSError as exc:
        message = f"cannot read {source}: {exc.strerror} (pass --logs FILE, or - for stdin)"
        raise LogsReportError(message) from None
    except BrokenProcessPool:
        message = "a process reading the log stopped (out of memory?): run again with --jobs 1"
        raise LogsReportError(message) from None


def _notify(url: str, markdown: str) -> None:
    import httpx

    try:
        logs_report.notify(url, markdown)
    except httpx.HTTPError as exc:
        raise LogsReportError(f"posting the report failed: {type(exc).__name__}") from None
