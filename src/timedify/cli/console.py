"""The only module that talks to the terminal: Rich consoles for data (stdout) and diagnostics.

Colour only when a terminal is attached; plain text in pipes, cron and CI.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

OK, WARN, FAIL = "✅", "⚠️", "❌"


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, one document, no colour."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True)


def status_line(ok: bool | None, text: str) -> None:
    """✅/⚠️/❌ line: True ok, None warning, False failure."""
    mark = OK if ok else (WARN if ok is None else FAIL)
    out.print(f"{mark} {text}", markup=False)


def table(headers: list[str], rows: list[list[str]]) -> None:
    """Aligned columns on stdout, never wrapped or cut (pipes and greps see whole values)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in [headers, *rows]:
        text = "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        out.print(
            text.rstrip(), markup=False, soft_wrap=True, style="bold" if line is headers else None
        )
