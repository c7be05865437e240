"""The real `timedify` command as a subprocess, with the test settings in its environment."""

from __future__ import annotations

import os
import pty
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


def run_cli_on_terminal(
    env: dict[str, str], *args: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `timedify ARGS` with stderr on a pseudo-terminal (as in an operator's shell), stdout
    captured; return the result and what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        # Read while it runs: a terminal's buffer is small, and a full one would stop it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "timedify", *args],
            env={**service_env(env), "TERM": "xterm", "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=follower,
            cwd="/",
        )
        os.close(follower)
        shown = _read_all(leader)
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(leader)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), "")
    return result, shown.decode(errors="replace")


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
