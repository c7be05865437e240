"""`timedify`: the service and the operations toolkit as one command (SPEC §4).

One module per command group, joined here; this module is also the single error boundary:
expected failures (`TimedifyError`) become one line on stderr and their exit code, with the
traceback only under `-v`.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click.exceptions import NoArgsIsHelpError  # Typer's copy of Click's
from typer.core import TyperGroup

from timedify import __version__
from timedify.cli import (
    backup,
    checks,
    config,
    console,
    deadletters,
    logs,
    logs_report,
    migrate,
    retention,
    service,
    shops,
    smoke,
    status,
    webhooks,
    worker,
)
from timedify.errors import ConfigError, TimedifyError

if TYPE_CHECKING:
    # Typer carries its own copy of Click; its commands are of these types.
    from typer._click import Command, Context, HelpFormatter


def summary(command: Command) -> str:
    """A command's line in `timedify --help`: its first sentence, up to a colon.

    Click would cut the first paragraph at a width and end it with `...` mid-phrase.
    """
    if command.short_help:
        return command.short_help
    first = re.split(r"(?<=\.)\s|\n\s*\n", (command.help or "").strip(), maxsplit=1)[0]
    return " ".join(first.split(": ", 1)[0].split()).rstrip(".")


class _Root(TyperGroup):
    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="timedify",
    cls=_Root,
    help="Timedify: Shopify webhook service and operations toolkit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_verbose = {"on": False}


def _print_version(value: bool) -> None:
    # Eager: runs while the options are parsed, before click asks for a command.
    if value:
        console.out.print(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    _verbose["on"] = verbose


service.register(app)
migrate.register(app)
webhooks.register(app)
worker.register(app)
deadletters.register(app)
checks.register(app)
logs.register(app)
retention.register(app)
smoke.register(app)
status.register(app)
config.register(app)
backup.register(app)
shops.register(app)
logs_report.register(app)


def main() -> None:
    """Entry point of the `timedify` command."""
    try:
        # Not standalone: Click's own errors come back here, to be printed as one line.
        code = app(standalone_mode=False)
    except typer.Abort:  # end of input at a prompt
        console.error("aborted: the input ended before an answer")
        sys.exit(1)
    except NoArgsIsHelpError as exc:  # `timedify` alone: the help, on stderr, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # a usage error (unknown option, bad value, ...)
        console.error(_one_line(exc))
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        console.error("configuration is invalid:")
        for problem in exc.problems:
            console.err.print(f"  - {problem}", markup=False)
        sys.exit(exc.exit_code)
    except TimedifyError as exc:
        if _verbose["on"]:
            console.err.print_exception()
        console.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    # `typer.Exit(n)` comes back as n; a command that completes returns None.
    sys.exit(code if type(code) is int else 0)


def _one_line(exc: typer.TyperException) -> str:
    """Click's message, and where the help is (Click prints usage, hint and error apart)."""
    context = getattr(exc, "ctx", None)
    if context is None:
        return exc.format_message()
    return f"{exc.format_message()} (see {context.command_path} --help)"
