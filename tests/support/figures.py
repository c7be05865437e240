"""Figures of the reliability suite: recorded by the tests, rendered into docs/reliability.md.

`record()` appends one JSON line to $TIMEDIFY_RELIABILITY_FIGURES when it is set (so it works
across xdist workers); `python -m tests.support.figures FILE "COMMAND"` prints a Markdown
section with a table of them, which `make reliability` appends to docs/reliability.md.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def record(scenario: str, **values: Any) -> None:
    target = os.environ.get("TIMEDIFY_RELIABILITY_FIGURES")
    if not target:
        return
    line = orjson.dumps({"scenario": scenario, **values}) + b"\n"
    with open(target, "ab") as f:  # one write per line: safe across processes
        f.write(line)


def render(path: Path, command: str) -> str:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    rows.sort(key=lambda r: r["scenario"])
    columns = sorted({k for r in rows for k in r if k != "scenario"})
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    out = [
        "",  # appended to a document whose last table must end first
        f"## Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}` — machine: {os.cpu_count()} cores, {cpu}, Python "
        f"{platform.python_version()}",
        "",
        "| scenario | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    out += [
        "| " + r["scenario"] + " | " + " | ".join(str(r.get(c, "")) for c in columns) + " |"
        for r in rows
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1]), sys.argv[2]))
