"""The real `timedify` command as a subprocess, with the test settings in its environment."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import service_env


def run_cli(
    env: dict[str, str], *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `timedify ARGS` from `/` (so no stray .env is read); text stdout/stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "timedify", *args],
        env=service_env(env),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd="/",
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )
