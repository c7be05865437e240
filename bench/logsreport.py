"""The logs-report scenario: `timedify logs-report` next to `timedify alerting-check`.

Both read the same generated log (`logscan.write_log`: mostly `webhook_accepted` lines, 1 in 200
an error), from the page cache, as the two routines read a week and a day of `fly logs`. The
alerting check JSON-parses only the lines holding `"error`; the report parses every line, so
the ratio says what looking at every line costs (the target: the same speed). Runs alternate
(check, report, check, ...) so a neighbour's load on the shared machine hits both; figures are
medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.logscan import write_log
from bench.report import table
from bench.services import service_env

# The weekly review should read a week as fast as the daily check reads a day's errors.
TARGET_RATIO = 1.0
COMMANDS = {
    "alerting-check": ["alerting-check", "--since", "24h", "--no-db"],
    "logs-report": ["logs-report", "--since", "7d", "--format", "json"],
    # As `fly logs --no-tail | timedify logs-report` reads: every byte through the first process.
    "logs-report from a pipe": ["logs-report", "--since", "7d", "--format", "json"],
}
PIPED = frozenset({"logs-report from a pipe"})


def measure(
    workdir: Path, database_url: str, secret: str, megabytes: int, repeat: int
) -> dict[str, float]:
    """Median seconds of each command over the same file, and the file's size in bytes."""
    path = workdir / "timedify-logs-report.log"
    size = write_log(path, megabytes)
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # page cache
    env = service_env(database_url, secret, workdir)
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeat):
        for name, args in COMMANDS.items():
            source = "-" if name in PIPED else str(path)
            command = [sys.executable, "-m", "timedify", *args, "--logs", source]
            started = time.perf_counter()
            done = _run(command, env, path if name in PIPED else None)
            seconds[name].append(time.perf_counter() - started)
            if name != "alerting-check" and done.returncode != 0:
                raise RuntimeError(f"{name} failed: {done.stderr[-500:]!r}")
    path.unlink()
    return {"bytes": size, **{name: statistics.median(s) for name, s in seconds.items()}}


def _run(
    command: list[str], env: dict[str, str], piped: Path | None
) -> subprocess.CompletedProcess[bytes]:
    if piped is None:
        return subprocess.run(command, env=env, capture_output=True, check=False)
    with subprocess.Popen(["cat", str(piped)], stdout=subprocess.PIPE) as cat:
        done = subprocess.run(command, env=env, stdin=cat.stdout, capture_output=True, check=False)
        assert cat.stdout is not None
        cat.stdout.close()
    return done


def section(figures: dict[str, float]) -> str:
    """The scenario's markdown section for docs/benchmarks.md."""
    mb = figures["bytes"] / 2**20
    check = figures["alerting-check"]
    rows = [
        [name, f"{mb:,.0f}", f"{figures[name]:.2f}", f"{mb / figures[name]:,.0f}",
         f"{check / figures[name]:.2f}"]
        for name in COMMANDS
    ]  # fmt: skip
    return (
        "#### Logs-report: every line of a generated log, next to alerting-check\n\n"
        + table(["command", "MiB", "seconds", "MiB/s", "x alerting-check"], rows)
        + "\n"
    )
