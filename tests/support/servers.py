"""The service over real HTTP on 127.0.0.1: in a thread (fast) or as the real CLI process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.pgcluster import free_port
from timedify.settings import Settings
from timedify.web.app import BackgroundFactory, create_app


@contextmanager
def threaded_server(
    settings: Settings, background: list[BackgroundFactory] | None = None, **app_options: Any
) -> Iterator[tuple[str, Any]]:
    """Serve `create_app(settings, **app_options)` with uvicorn in a thread; yield (URL, app)."""
    app = create_app(settings, background=background, **app_options)
    with serve_in_thread(app) as url:
        yield url, app


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve the ASGI `app` with uvicorn in a thread of this process; yield its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def service_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPIFY_", "DATABASE_"))}
    env.update(settings_env)
    return env


def _stopped(task: Path) -> bool:
    """Whether a thread (`/proc/PID/task/TID`) is stopped; one that has exited counts too."""
    try:
        state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("T", "t", "Z", "X")  # Z, X: exited (a crash is the caller's to see)


class _Subprocess:
    """A `timedify` subprocess whose output goes to a log file."""

    proc: subprocess.Popen[bytes] | None = None
    log_path: Path

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def pause(self, timeout: float = 10) -> None:
        """SIGSTOP, returning once every thread has stopped (the signal alone does not wait).

        What the database shows then is what a kill would leave behind, except for a commit
        the process was inside of: it can still take effect (see the worker tests)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        tasks = Path(f"/proc/{self.proc.pid}/task")
        deadline = time.monotonic() + timeout
        while tasks.exists() and not all(_stopped(task) for task in tasks.iterdir()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {self.proc.pid} did not stop")
            time.sleep(0.001)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            # A paused process acts on the signal only once continued; a running one ignores this.
            self.proc.send_signal(signal.SIGCONT)
        return self.proc.wait(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ServiceProcess(_Subprocess):
    """`timedify serve` as a subprocess, its logs in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.env = service_env({**env, "PORT": str(self.port), "HOST": "127.0.0.1"})
        self.log_path = log_path
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timedify", "serve", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_live()
        return self

    def wait_live(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.logs()}")
            try:
                if httpx.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"serve did not come up: {self.logs()}")

    def stop_gracefully(self, timeout: float = 20) -> bool:
        """SIGTERM; True when the service shut down cleanly (uvicorn re-raises the signal)."""
        code = self.terminate(timeout)
        return code in (0, -signal.SIGTERM) and '"service_stopped"' in self.logs()


class WorkerProcess(_Subprocess):
    """`timedify worker` as a subprocess, its logs in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = service_env(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timedify", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self
