"""The only module that talks to the terminal: Rich consoles for data (stdout) and diagnostics.

Colour, tables and progress bars only when a terminal is attached; plain text in pipes, cron
and CI (Rich detects the terminal; `NO_COLOR` is honoured by Rich itself).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import orjson
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

OK, WARN, FAIL = "✅", "⚠️", "❌"
LEVEL_STYLES = {
    "debug": "dim",
    "info": "green",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold white on red",
}


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, one document, no colour."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)


def warning(message: str) -> None:
    """One line on stderr that does not fail the command."""
    err.print(f"[bold yellow]warning:[/] {escape(message)}", markup=True)


def mark(ok: bool | None) -> str:
    """✅ for True, ⚠️ for None (warning), ❌ for False."""
    return OK if ok else (WARN if ok is None else FAIL)


def status_line(ok: bool | None, text: str) -> None:
    """✅/⚠️/❌ line: True ok, None warning, False failure."""
    out.print(f"{mark(ok)} {text}", markup=False)


def plain(text: str) -> None:
    """One line of text, printed as is (no markup interpretation)."""
    out.print(text, markup=False)


def heading(text: str) -> None:
    out.print(Text(text, style="bold underline"))


def grid(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    wrap: str | None = None,
) -> None:
    """A table: boxed with colour on a terminal, simple aligned columns otherwise.

    On a narrow terminal only the `wrap` column (e.g. a long error) folds; the others (ids,
    topics, times) stay whole.
    """
    terminal = out.is_terminal
    view = Table(
        title=title,
        box=box.ROUNDED if terminal else box.SIMPLE,
        show_edge=terminal,
        header_style="bold" if terminal else "",
        title_justify="left",
    )
    for column in columns:
        if wrap is None:
            view.add_column(column)
        else:
            view.add_column(column, no_wrap=column != wrap, overflow="fold")
    for row in rows:
        view.add_row(*(Text(str(cell)) for cell in row))
    if terminal:
        out.print(view)
    else:
        # A pipe has no width: never wrap a cell, so scripts and greps see whole rows.
        needed = Measurement.get(out, out.options.update(max_width=10_000), view).maximum
        Console(width=max(needed, out.width), highlight=False, file=sys.stdout).print(view)


def log_line(level: str, text: str) -> None:
    """One log line for `logs-watch`, coloured by level when a terminal is attached."""
    out.print(Text(text, style=LEVEL_STYLES.get(level, "")))


class Advance(Protocol):
    def __call__(self, done: int) -> None: ...


def shows_progress() -> bool:
    """Whether `progress` draws a bar (a terminal on stderr), i.e. whether a total is read."""
    return err.is_terminal


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Advance]:
    """A progress bar on stderr while a terminal is attached; silent otherwise.

    Yields a callable that adds `done` units.
    """
    if not shows_progress():
        yield lambda done: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.advance(task, done)
