"""Tables on stdout and the run's record in docs/benchmarks.md (command, machine, date)."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
RUNS_HEADING = "## Runs"


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


def record(sections: list[str], settings: str) -> str:
    """The whole run as Markdown: heading, command, machine, settings, then each table."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        f"### {now}",
        "",
        f"- command: `{command()}`",
        f"- machine: {machine()}",
        f"- code: {revision()}; {settings}",
        "",
    ]
    return "\n".join(head) + "\n" + "\n\n".join(sections) + "\n"


def append(text: str) -> None:
    """Add the run at the end of the "Runs" section, leaving other sections where they are."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if RUNS_HEADING + "\n" not in doc:
        doc = doc.rstrip("\n") + f"\n\n{RUNS_HEADING}\n"
    start = doc.index(RUNS_HEADING + "\n") + len(RUNS_HEADING) + 1
    nxt = doc.find("\n## ", start)
    end = len(doc) if nxt == -1 else nxt + 1
    before, after = doc[:end].rstrip("\n"), doc[end:]
    doc = f"{before}\n\n{text.rstrip()}\n" + (f"\n{after}" if after else "")
    DOC.write_text(doc)
