"""`timedify config check`: every setting by name, ✅/⚠️/❌ and why, never a value (O9)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timedify.cli import console

CHECK_HELP = """Check every setting (required and optional, secrets included) from the environment
and the .env file: present and well-formed, with the reason when not. Values are never printed.

Example: timedify config check --env-file .env

Then shopify.app.toml (--app-config): every URI in it is a route the service serves, its scopes
equal SCOPES, application_url is on SHOPIFY_APP_URL (S9).

Exit codes: 0 usable (warnings allowed), 1 a required setting is missing or one is malformed,
or the app configuration disagrees with the service."""


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Configuration.",
        short_help="Check every setting and shopify.app.toml",
        no_args_is_help=True,
    )
    group.command("check", help=CHECK_HELP)(check)
    app.add_typer(group, name="config")


def check(
    env_file: Annotated[Path, typer.Option(help="The .env file to read (if it exists).")] = Path(
        ".env"
    ),
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    app_config: Annotated[
        Path, typer.Option(help="The Shopify app configuration to hold against the service.")
    ] = Path("shopify.app.toml"),
) -> None:
    from timedify.toolkit import app_config as app_toml
    from timedify.toolkit import config_check

    checks = config_check.check_config(env_file)
    toml_checks = app_toml.check_file(app_config, env_file)
    failed = config_check.has_failures(checks) or config_check.has_failures(toml_checks)
    if json:
        console.print_json(
            {
                "ok": not failed,
                "env_file": str(env_file.resolve()) if env_file.is_file() else None,
                "settings": [c.to_json() for c in checks],
                "app_config": [c.to_json() for c in toml_checks],
            }
        )
    else:
        console.plain(_source(env_file))
        for item in checks:
            # "missing (required)" says it already; other reasons get the tag.
            tag = " (required)" if item.required and "required" not in item.reason else ""
            console.status_line(item.ok, f"{item.name}{tag}: {item.reason}")
        bad = sum(c.ok is False for c in checks)
        warn = sum(c.ok is None for c in checks)
        console.plain(
            f"\n{len(checks)} settings: {_count(bad, 'error')}, {_count(warn, 'warning')}\n"
        )
        for item in toml_checks:
            console.status_line(item.ok, f"{app_config.name}: {item.name}: {item.reason}")
    if failed:
        raise typer.Exit(1)


def _source(env_file: Path) -> str:
    if env_file.is_file():
        return f"reading the environment and {env_file.resolve()} (the environment wins)"
    return f"no {env_file} in {Path.cwd()}: reading the environment only"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
