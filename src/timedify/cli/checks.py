"""`timedify health-check` (O2) and `timedify alerting-check` (O3)."""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from timedify.cli import console
from timedify.errors import TimedifyError, database_reason
from timedify.toolkit import alerting_check as alerting
from timedify.toolkit import log_scan
from timedify.toolkit.alerting_check import Finding, Report, State, Threshold, Thresholds

if TYPE_CHECKING:
    from timedify.toolkit.health_check import Probe

# Heavier modules (httpx, SQLAlchemy, pydantic) are imported inside the commands that use them,
# so `alerting-check` on a log file starts fast (see timedify.toolkit.alerting_check).

HEALTH_HELP = """Check a running service: /health, /health/live, /health/webhooks, every webhook
route (an unsigned request must get 401 - a 200 is a failure), response times and the local
configuration.

Example: timedify health-check --url https://timedify.fly.dev

Exit codes: 0 all OK, 1 a warning, 2 a critical failure."""

ALERTING_HELP = """For cron and CI (Nagios plugin convention). Counts webhook errors, database
errors, 429s and 5xx in the logs of the --since window; reads the database for unresolved dead
letters, the oldest pending event and compliance requests near their deadline; optionally probes
--url. First line: `TIMEDIFY <STATE> - summary | perfdata`.

Thresholds: --threshold NAME=WARN:CRIT (repeatable), NAME one of webhook_errors (1:10),
db_errors (1:5), http_429 (10:100), http_5xx (1:10), dead_letters (1:10),
backlog_age_seconds (300:3600), compliance_days (7:2 - open requests due within WARN / CRIT
days).

Example: fly logs --no-tail | timedify alerting-check --logs - --since 24h --notify $SLACK_URL

Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a source could not be read)."""


def register(app: typer.Typer) -> None:
    app.command(
        "health-check", help=HEALTH_HELP, short_help="Check a running service's health and routes"
    )(health_check)
    app.command(
        "alerting-check",
        help=ALERTING_HELP,
        short_help="Logs, database and URL against thresholds, for cron (Nagios)",
    )(alerting_check)


def health_check(
    url: Annotated[
        str | None, typer.Option(help="Base URL of the service [default: http://HOST:PORT].")
    ] = None,
    warn_ms: Annotated[float, typer.Option(help="Response time warning, ms.")] = 500,
    crit_ms: Annotated[float, typer.Option(help="Response time failure, ms.")] = 2000,
    timeout: Annotated[float, typer.Option(help="Seconds to wait per request.")] = 5.0,
    config: Annotated[
        bool, typer.Option("--config/--no-config", help="Also check the local configuration.")
    ] = True,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    import httpx

    from timedify.toolkit import health_check, urls

    timing = health_check.Timing(warn_ms, crit_ms)
    base = urls.base_url(url) if url else _local_url()
    with httpx.Client(timeout=timeout) as client:
        down = health_check.unreachable(client, base)
        if down is None:
            results = health_check.health_probes(client, base, timing)
            results += health_check.route_probes(client, base, timing)
        else:
            results = [down]
    if config and down is None:
        results.append(_config_probe())
    code = health_check.exit_code(results)
    summary = {0: "all checks passed", 1: "warnings", 2: "CRITICAL failures"}[code]
    if json:
        console.print_json(
            {
                "url": base,
                "exit_code": code,
                "summary": summary,
                "checks": [p.to_json() for p in results],
            }
        )
    else:
        for probe in results:
            console.status_line(probe.ok, f"{probe.name}: {probe.text}")
        failed = sum(p.ok is False for p in results)
        warned = sum(p.ok is None for p in results)
        checks = f"{len(results)} check" + ("" if len(results) == 1 else "s")
        warnings = f"{warned} warning" + ("" if warned == 1 else "s")
        console.plain(f"\n{summary}: {checks}, {failed} failed, {warnings}")
    raise typer.Exit(code)


def _local_url() -> str:
    from timedify.settings import load_settings

    try:
        settings = load_settings()
    except TimedifyError:
        return "http://127.0.0.1:8000"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - compared with, never bound  # nosec B104
    return f"http://{host}:{settings.port}"


def _config_probe() -> Probe:
    from timedify.toolkit import config_check
    from timedify.toolkit.health_check import Probe

    checks = config_check.check_config()
    broken = [c.name for c in checks if c.ok is False]
    if broken:
        return Probe("configuration", None, f"problems with {', '.join(broken)}")
    return Probe("configuration", True, f"{len(checks)} settings valid")


def alerting_check(
    logs: Annotated[
        str | None, typer.Option(help="Log file to scan, or - for stdin (e.g. `fly logs`).")
    ] = None,
    since: Annotated[str, typer.Option(help="Window: 24h, 90m, 7d.")] = "24h",
    url: Annotated[str | None, typer.Option(help="Also probe URL/health.")] = None,
    db: Annotated[
        bool, typer.Option("--db/--no-db", help="Read dead letters, backlog, compliance.")
    ] = True,
    threshold: Annotated[
        list[str] | None, typer.Option(help="NAME=WARN:CRIT, repeatable (see above).")
    ] = None,
    notify: Annotated[
        str | None, typer.Option(help="Slack-compatible incoming webhook URL, posted when not OK.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    try:
        window = alerting.parse_window(since)
        limits = parse_thresholds(threshold or [])
    except ValueError as exc:
        console.plain(f"TIMEDIFY UNKNOWN - {exc}")
        raise typer.Exit(int(State.UNKNOWN)) from None
    report = Report(window=since)
    if logs is not None:
        report.findings += _log_findings(logs, alerting.since(window), limits)
    if db:
        report.findings += _database_findings(limits)
    if url:
        report.findings.append(_url_finding(url))
    _print_report(report, json)
    if notify and report.state != State.OK:
        _notify(notify, report)
    raise typer.Exit(int(report.state))


def _url_finding(url: str) -> Finding:
    from timedify.toolkit import urls

    try:
        return alerting.url_finding(urls.base_url(url))
    except TimedifyError as exc:
        return Finding("health", State.UNKNOWN, str(exc))


def parse_thresholds(items: list[str]) -> Thresholds:
    """`NAME=WARN:CRIT` options over the defaults."""
    limits = Thresholds()
    for item in items:
        name, _, pair = item.partition("=")
        warn_text, _, crit_text = pair.partition(":")
        try:
            warn, crit = float(warn_text), float(crit_text)
        except ValueError:
            raise ValueError(f"bad --threshold {item!r}: use NAME=WARN:CRIT") from None
        name = name.strip()
        if name == "compliance_days":
            limits = dataclasses.replace(
                limits, compliance_warn_days=warn, compliance_crit_days=crit
            )
        elif name in {f.name for f in dataclasses.fields(Thresholds)}:
            changes: dict[str, Any] = {name: Threshold(warn, crit)}
            limits = dataclasses.replace(limits, **changes)
        else:
            raise ValueError(f"unknown threshold {name!r}")
    return limits


def _log_findings(source: str, since: datetime, limits: Thresholds) -> list[Finding]:
    try:
        stream: IO[bytes] = sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
    except OSError as exc:
        return [Finding("logs", State.UNKNOWN, f"cannot read {source}: {exc.strerror}")]
    with stream:
        result = log_scan.scan(stream, since)
    findings = alerting.log_findings(result, limits)
    top = ", ".join(f"{name} x{count}" for name, count in result.top_events(3))
    text = f"{result.bytes} bytes scanned" + (f"; top: {top}" if top else "")
    return [*findings, Finding("logs", State.OK, text)]


def _database_findings(limits: Thresholds) -> list[Finding]:
    from timedify.db import engine_for
    from timedify.settings import load_settings

    try:
        settings = load_settings()
    except TimedifyError as exc:
        return [Finding("database", State.UNKNOWN, f"configuration invalid: {exc}")]
    engine = engine_for(settings, read_only=True, statement_timeout_ms=10_000)
    try:
        with engine.connect() as conn:
            return alerting.database_findings(conn, limits, datetime.now(UTC))
    except Exception as exc:  # any driver error means the source could not be read
        reason = database_reason(exc, engine.url.password)
        return [Finding("database", State.UNKNOWN, f"cannot read the database: {reason}")]
    finally:
        engine.dispose()


def _print_report(report: Report, json: bool) -> None:
    if json:
        console.print_json(report.to_json())
        return
    console.plain(report.summary())
    for finding in report.findings:
        ok = {State.OK: True, State.WARNING: None}.get(finding.state, False)
        console.status_line(ok, f"{finding.name}: {finding.text}")


def _notify(url: str, report: Report) -> None:
    import httpx

    try:
        alerting.notify(url, report)
    except httpx.HTTPError as exc:
        # The check's own result still stands; the failed notification is said on stderr.
        console.error(f"notification failed: {type(exc).__name__}")
