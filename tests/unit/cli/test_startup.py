"""O3: every `timedify` start registers all commands; that must not import the heavy stack.

`alerting-check` over a large log is benchmarked against grep, so start-up time counts. Command
modules import typer and the console at the top and everything else inside the command.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "starlette", "uvicorn", "psycopg", "httpx", "pydantic")


def test_importing_the_cli_keeps_the_heavy_modules_out() -> None:
    code = f"import sys, timedify.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
