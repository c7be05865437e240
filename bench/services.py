"""The processes a benchmark runs against, all on 127.0.0.1 and all stopped at the end."""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.support.pgcluster import PgCluster, free_port

from timedify import migrate
from timedify.db import make_engine


class Process:
    """A server subprocess on a free port, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self._args = [a.replace("{port}", str(self.port)) for a in args]
        self._env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *self._args], env=self._env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def start(self, ready_path: str, timeout: float = 30) -> Process:
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}")
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not come up: see {self.log}")

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process ever had."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else float("nan")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def baseline(workdir: Path) -> Process:
    """The raw-ASGI baseline (`bench.baseline`) with the service's uvicorn options."""
    env = dict(os.environ)
    proc = Process("baseline", ["-m", "bench.baseline", "{port}"], env, workdir / "baseline.log")
    return proc.start("/")


def sqlite_database(workdir: Path, name: str = "bench") -> str:
    url = f"sqlite:///{workdir / f'{name}.sqlite3'}"
    _migrate(url)
    return url


def postgres_database(cluster: PgCluster) -> str:
    url = cluster.create_database(f"bench_{secrets.token_hex(4)}")
    _migrate(url)
    return url


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


_TOKEN_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def service_env(database_url: str, secret: str, workdir: Path) -> dict[str, str]:
    """Production settings for `timedify` processes of the benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPIFY_", "DATABASE_"))}
    env.update(
        ENVIRONMENT="production",
        SHOPIFY_API_KEY="bench-key",
        SHOPIFY_API_SECRET=secret,
        SHOPIFY_APP_URL="https://bench.example.com",
        DATABASE_URL=database_url,
        TMP_DIR=str(workdir),
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        # Required in production (S5); a Fernet key: 32 random bytes, URL-safe base64.
        TOKEN_ENCRYPTION_KEY=_TOKEN_KEY,
    )
    return env


def service(name: str, database_url: str, secret: str, workdir: Path) -> Process:
    """`timedify serve --no-worker`: the ingest path alone, as in production, logs to a file."""
    env = service_env(database_url, secret, workdir)
    args = ["-m", "timedify", "serve", "--no-worker"]
    return Process(name, args, env, workdir / f"{name}.log").start("/health/live")


def layer(name: str, database_url: str, secret: str, workdir: Path) -> Process:
    """`python -m bench.layers NAME`: the endpoint without its durable commit (see there)."""
    env = service_env(database_url, secret, workdir)
    args = ["-m", "bench.layers", name, "{port}"]
    # Any answer below 500 means it is up: the endpoint answers a GET with 405.
    return Process(name, args, env, workdir / f"{name}.log").start("/webhooks")


def acked_counts(url: str) -> tuple[int, int]:
    """(new, duplicate) acknowledgements so far, from the service's own `/metrics`."""
    text = httpx.get(url + "/metrics", timeout=10).text
    new = dup = 0.0
    for line in text.splitlines():
        if line.startswith("timedify_webhooks_acked_total{"):
            value = float(line.rsplit(" ", 1)[1])
            if 'outcome="duplicate"' in line:
                dup += value
            else:
                new += value
    return int(new), int(dup)
