"""Tables on stdout and each scenario's latest figures in docs/benchmarks.md.

The document's "Latest figures" section holds one block per scenario, each saying when, on which
commit and machine and with which command it was measured; a run replaces the blocks of the
scenarios it ran and leaves the others, so the document does not grow with every run.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
LATEST_HEADING = "## Latest figures"
_MARK = "<!-- bench: {} -->"
_MARK_LINE = re.compile(r"^<!-- bench: (\S+) -->\n", re.MULTILINE)


def machine() -> str:
    """Cores, CPU model, kernel, Python: what a reader needs to compare two runs."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=DOC.parent.parent
        ).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("+uncommitted" if git("status", "--porcelain", "--", "src", "bench") else "")


def command() -> str:
    return os.environ.get("BENCH_COMMAND") or "python -m bench " + shlex.join(sys.argv[1:])


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (readable as plain text too)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in [header, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


def run_line(settings: str) -> str:
    """When, on what code and machine, with which command and settings a run measured."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # The machine is shared: the load says how much a neighbour may have moved the figures.
    load = os.getloadavg()[2]
    return (
        f"Measured {now}, code {revision()}, `{command()}`; {machine()}, load average "
        f"{load:.1f} (15 min, at the end); {settings}."
    )


def block(name: str, sections: list[str], targets: str | None, settings: str) -> str:
    """One scenario's figures as the document shows them: heading, run line, tables."""
    scenario, _, databases = name.partition(":")
    title = f"{scenario} ({databases} only)" if databases else scenario
    parts = [f"### {title}", run_line(settings), *sections]
    if targets:
        parts.append(targets)
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def update(blocks: dict[str, str], order: Sequence[str], doc_path: Path = DOC) -> None:
    """Replace the figures of the scenarios that ran in "Latest figures", keep the others.

    A block is named by its scenario, or `scenario:databases` for a run on only some of them,
    so that a quick one-database run does not replace the figures of both.

    Each scenario's block starts with a marker line; the text before the first marker (the
    section's own introduction) and every other section of the document stay as they are, so
    the document holds one block per scenario however often the benchmark runs.
    """
    doc = doc_path.read_text() if doc_path.exists() else "# Benchmarks\n"
    if LATEST_HEADING + "\n" not in doc:
        doc = doc.rstrip("\n") + f"\n\n{LATEST_HEADING}\n"
    start = doc.index(LATEST_HEADING + "\n") + len(LATEST_HEADING) + 1
    nxt = doc.find("\n## ", start)
    end = len(doc) if nxt == -1 else nxt + 1
    intro, current = split(doc[start:end])
    for name in blocks:  # a run on every database supersedes the runs on one
        if ":" not in name:
            current = {n: b for n, b in current.items() if not n.startswith(name + ":")}
    current.update(blocks)
    rank = {n: i for i, n in enumerate(order)}
    names = sorted(current, key=lambda n: (rank.get(n.partition(":")[0], len(rank)), n))
    body = "".join(f"\n{_MARK.format(n)}\n{current[n].strip()}\n" for n in names)
    rest = doc[end:]
    doc_path.write_text(
        doc[:start] + intro.rstrip("\n") + "\n" + body + ("\n" + rest if rest else "")
    )


def split(section: str) -> tuple[str, dict[str, str]]:
    """A "Latest figures" section's introduction and its blocks by scenario name."""
    pieces = _MARK_LINE.split(section)
    blocks = {pieces[i]: pieces[i + 1] for i in range(1, len(pieces) - 1, 2)}
    return pieces[0], blocks
