"""`timedify status`: one screen of everything an operator looks at first (O8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timedify.cli import console

if TYPE_CHECKING:
    from timedify.toolkit import config_check
    from timedify.toolkit import status as overview

HELP = """One screen: configuration, the service's /health (with --url), database and
migrations, worker heartbeat, webhook activity per topic over --hours, backlog, dead letters,
processing latency percentiles and open compliance requests.

Example: timedify status --url http://127.0.0.1:8000

Exit codes: 0 shown, 2 invalid configuration, 3 database behind, 4 database unreachable."""


def register(app: typer.Typer) -> None:
    app.command(
        "status", help=HELP, short_help="Everything an operator looks at first, one screen"
    )(status)


def status(
    url: Annotated[str | None, typer.Option(help="Also ask this service's /health.")] = None,
    hours: Annotated[float, typer.Option(min=0.01, help="Activity window in hours.")] = 24,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    from timedify import migrate
    from timedify.cli.common import open_engine
    from timedify.settings import load_settings
    from timedify.toolkit import config_check, urls
    from timedify.toolkit import status as overview

    settings = load_settings()
    checks = config_check.check_config()
    health = _health(urls.base_url(url)) if url else None
    with (
        open_engine(settings, read_only=True, statement_timeout_ms=10_000) as engine,
        engine.connect() as conn,
    ):
        view = overview.collect(conn, timedelta(hours=hours), datetime.now(UTC))
    head = migrate.head_revision()
    if json:
        doc: dict[str, Any] = {
            **view.to_json(),
            "database": "sqlite" if settings.is_sqlite else "postgresql",
            "head": head,
            "health": health,
            "config_errors": [c.name for c in checks if c.ok is False],
            "window_hours": hours,
        }
        console.print_json(doc)
        return
    view.heartbeat_stale_seconds = settings.health_heartbeat_stale_seconds
    _print(view, checks, health, head, hours, "SQLite" if settings.is_sqlite else "PostgreSQL")


def _latency(p: dict[str, float | None]) -> str:
    if not p.get("count"):
        return "processing latency (received → processed): no event processed in the window"
    return (
        f"processing latency (received → processed): p50 {p['p50']} s, "
        f"p95 {p['p95']} s, p99 {p['p99']} s (n={p['count']})"
    )


def _health(url: str) -> str:
    import httpx

    from timedify.toolkit import urls

    try:
        return str(httpx.get(url + "/health", timeout=5).json().get("status"))
    except httpx.HTTPError as exc:
        return f"unreachable: {urls.reason(exc)}"
    except (ValueError, AttributeError):
        return "not a health document"


def _print(
    view: overview.Overview,
    checks: list[config_check.SettingCheck],
    health: str | None,
    head: str,
    hours: float,
    database: str,
) -> None:
    broken = [c.name for c in checks if c.ok is False]
    console.status_line(
        not broken, "configuration " + (f"problems: {', '.join(broken)}" if broken else "valid")
    )
    if health is not None:
        console.status_line(
            health == "pass" or (None if health == "warn" else False), f"service /health: {health}"
        )
    console.status_line(
        view.revision == head, f"{database} at migration {view.revision} (code {head})"
    )
    age = view.heartbeat_age_seconds
    console.status_line(
        (age is not None and age < view.heartbeat_stale_seconds) or None,
        f"worker heartbeat: {f'{age:g} s ago' if age is not None else 'none'}",
    )
    rows = [
        (
            topic,
            a.received_in_window,
            a.pending,
            a.failures_in_window,
            view.dead_letters.get(topic, 0),
            a.last_received_at.strftime("%Y-%m-%d %H:%M:%S") if a.last_received_at else "-",
        )
        for topic, a in sorted(view.activity.items())
    ]
    console.grid(
        f"webhooks, last {hours:g} h",
        ["topic", "received", "pending", "failures", "dead letters", "last received (UTC)"],
        rows or [("(none)", 0, 0, 0, 0, "-")],
    )
    failures = sum(a.failures_in_window for a in view.activity.values())
    # A failing handler is retried quietly until it becomes a dead letter: say so before then.
    console.status_line(
        failures == 0 or None,
        f"handler failures in the last {hours:g} h: {failures}"
        + (" (retried until applied or dead; `timedify logs-watch --errors`)" if failures else ""),
    )
    dead = sum(view.dead_letters.values())
    console.status_line(dead == 0 or None, f"unresolved dead letters: {dead}")
    console.plain(_latency(view.processing_latency))
    console.status_line(
        view.compliance_overdue == 0,
        f"compliance requests open: {view.compliance_open} ({view.compliance_overdue} overdue)",
    )
    reauth = view.needs_reauth
    console.status_line(
        not reauth or None,
        f"shops needing re-authentication: {len(reauth)}"
        + (f" ({', '.join(reauth[:5])}{', ...' if len(reauth) > 5 else ''})" if reauth else ""),
    )
