"""The alerting-check scenario: `timedify alerting-check` over a generated log vs `grep -c`.

The log is what `serve` writes: mostly `webhook_accepted` lines, with rejections, failed
events and database errors mixed in (1 line in 200 an error), all within the checked window.
grep counts the lines holding `"error` (the same needle the scanner looks for) on the same
file, after one untimed read so both find it in the page cache.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.services import service_env


def write_log(path: Path, megabytes: int) -> int:
    """A log of about `megabytes` MiB; its size in bytes."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    lines = []
    for i in range(2000):
        base = {"topic": "app/uninstalled", "shop": f"shop-{i % 97}.myshopify.com"}
        if i % 200 == 7:
            record = {
                **base,
                "reason": "invalid_signature",
                "status": 401,
                "event": "webhook_rejected",
                "level": "warning",
            }
        elif i % 200 == 101:
            record = {
                "event": "webhook_store_failed",
                "error_class": "db",
                "error_type": "OperationalError",
                "level": "error",
            }
        else:
            record = {
                **base,
                "webhook_id": f"wh-{i}",
                "status": 200,
                "duration_ms": 3.21,
                "event": "webhook_accepted",
                "level": "info",
            }
        record["time"] = now
        lines.append(orjson.dumps(record))
    block = b"\n".join(lines) + b"\n"
    with path.open("wb") as out:
        written = 0
        while written < megabytes * 2**20:
            out.write(block)
            written += len(block)
    return written


def measure(workdir: Path, database_url: str, secret: str, megabytes: int) -> dict[str, float]:
    """Seconds for grep and for alerting-check over the same file, and the file's size."""
    path = workdir / "timedify-bench.log"
    size = write_log(path, megabytes)
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # page cache
    started = time.perf_counter()
    subprocess.run(["grep", "-c", '"error', str(path)], capture_output=True, check=False)
    grep = time.perf_counter() - started
    args = ["-m", "timedify", "alerting-check", "--logs", str(path), "--since", "24h", "--no-db"]
    env = service_env(database_url, secret, workdir)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, check=False)
    check = time.perf_counter() - started
    if done.returncode == 3:
        raise RuntimeError(f"alerting-check could not read the log: {done.stdout!r}")
    path.unlink()
    return {"bytes": size, "grep": grep, "check": check}
