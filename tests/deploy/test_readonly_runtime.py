"""The installed service runs as the container would: read-only root, non-root, one volume (D1).

No Docker engine exists on the CI machines, so the image's runtime contract is proven under
bubblewrap (tests/support/sandbox.py) with the Dockerfile's own ENV, USER, VOLUME, CMD and
HEALTHCHECK and fly.toml's release command: the non-editable, byte-compiled package migrates,
serves, answers /health, stores a signed webhook - and writes nothing outside the volume.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import dockerfile
from tests.support.helpers import post_webhook
from tests.support.pgcluster import free_port
from tests.support.sandbox import INSTALL_DIR, Sandbox, install_package
from tests.support.settings import SHOP, TOKEN_KEY
from timedify.testing import signed_webhook

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox")]

PROBE = """
import errno, json, os, sys, timedify
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm'))]
rw = [l.split()[4] for l in open('/proc/self/mountinfo') if 'rw' in l.split()[5].split(',')]
refused = {}
for path in ('/probe', '/tmp/probe', '/opt/timedify/probe', '/etc/probe', sys.prefix + '/p'):
    try:
        open(path, 'w').close()
        refused[path] = 'written'
    except OSError as exc:
        refused[path] = errno.errorcode[exc.errno]
print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(),
                  'caps': caps, 'rw': rw, 'refused': refused, 'package': timedify.__file__}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_package(ROOT, tmp_path_factory.mktemp("install"))


@pytest.fixture
def sandbox(site: Path, tmp_path: Path) -> Sandbox:
    """A sandbox configured from the Dockerfile's final stage."""
    runtime = dockerfile.parse(ROOT / "Dockerfile")[-1]
    uid, gid = (int(part) for part in runtime.last("USER").split(":"))
    (volume,) = runtime.exec_form("VOLUME")
    env = runtime.env()
    # The image's PATH starts with its venv; here the venv is the dev one plus the install.
    env["PATH"] = f"{INSTALL_DIR}/bin:{os.path.dirname(sys.executable)}:/usr/bin:/bin"
    env.update(
        PYTHONPATH=INSTALL_DIR,
        HOST="127.0.0.1",  # never listen beyond loopback in tests
        PORT=str(free_port()),
        SHOPIFY_API_KEY="sandbox-key",
        SHOPIFY_API_SECRET=secrets.token_hex(32),  # production refuses placeholders
        SHOPIFY_APP_URL="https://app.example.com",
        TOKEN_ENCRYPTION_KEY=TOKEN_KEY,  # required in production (S5)
    )
    box = Sandbox(site=site, tmp=tmp_path / "volume", volume=volume, uid=uid, gid=gid, env=env)
    box.prepare_tmp()
    return box


def run(box: Sandbox, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(box.command(*argv), capture_output=True, text=True, timeout=60)


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with size and mtime: any write shows up as a difference."""
    files: dict[str, tuple[int, int]] = {}
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                stat = os.lstat(os.path.join(directory, name))
                files[os.path.join(directory, name)] = (stat.st_size, stat.st_mtime_ns)
    return files


def test_sandbox_is_read_only_non_root_and_runs_the_installed_package(sandbox: Sandbox) -> None:
    """Only the volume (and bwrap's private /dev) is writable; uid 10001 without capabilities."""
    result = run(sandbox, "python", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert (probe["uid"], probe["gid"]) == (sandbox.uid, sandbox.gid) == (10001, 10001)
    assert probe["groups"] in ([], [sandbox.gid])
    assert set(probe["caps"]) == {"0000000000000000"}
    assert probe["package"] == f"{INSTALL_DIR}/timedify/__init__.py"
    assert set(probe["refused"].values()) == {"EROFS"}, probe["refused"]
    writable = {m for m in probe["rw"] if m != "/proc" and not m.startswith("/dev")}
    assert writable == {sandbox.volume}


@pytest.fixture
def service(sandbox: Sandbox) -> Iterator[tuple[Sandbox, str, subprocess.Popen[bytes]]]:
    """fly.toml's release command, then the Dockerfile's CMD, in the sandbox."""
    release = tomllib.loads((ROOT / "fly.toml").read_text())["deploy"]["release_command"]
    migrated = run(sandbox, *release.split())
    assert migrated.returncode == 0, migrated.stderr
    cmd = dockerfile.parse(ROOT / "Dockerfile")[-1].exec_form("CMD")
    log = (sandbox.tmp.parent / "serve.log").open("wb")
    proc = subprocess.Popen(sandbox.command(*cmd), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{sandbox.env['PORT']}"
    try:
        wait_live(proc, url, sandbox.tmp.parent / "serve.log")
        yield sandbox, url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()


def descendants(pid: int) -> list[int]:
    """Processes below `pid` (the service runs under bwrap and setpriv)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def stop_like_docker(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM to the service itself, as `docker stop` sends it to the container's CMD."""
    commands = {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in descendants(proc.pid)
    }
    # bwrap's own pid-1 process repeats the arguments; the service is the one bwrap started.
    (service,) = [
        pid for pid, argv in commands.items() if b"serve" in argv and b"bwrap" not in argv[0]
    ]
    os.kill(service, signal.SIGTERM)
    proc.wait(20)
    assert '"service_stopped"' in log.read_text(), log.read_text()


def wait_live(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(url + "/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not come up: {log.read_text()}")


def stored_events(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        return list(conn.execute("SELECT webhook_id, state FROM webhook_events"))


def test_installed_service_migrates_serves_and_stores_a_webhook_only_in_the_volume(
    site: Path, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    """D1: migrate, serve, /health, HEALTHCHECK, a processed webhook, SIGTERM; only the volume
    changes."""
    visible = (site, Path(sys.prefix).resolve())
    before = snapshot(*visible)
    box, url, proc = request.getfixturevalue("service")

    health = httpx.get(url + "/health", timeout=2)
    assert health.status_code == 200, health.text
    assert health.json()["status"] in ("pass", "warn")
    _, probe = dockerfile.parse(ROOT / "Dockerfile")[-1].healthcheck()
    assert run(box, *probe).returncode == 0

    hook = signed_webhook("app/uninstalled", SHOP, box.env["SHOPIFY_API_SECRET"])
    assert post_webhook(url, hook).status_code == 200
    forged = signed_webhook("app/uninstalled", SHOP, "not-the-secret")
    assert post_webhook(url, forged).status_code == 401
    # The default database lives in the volume (TMP_DIR) and holds the acknowledged event.
    database = box.tmp / "timedify.sqlite3"
    assert [row[0] for row in stored_events(database)] == [hook.webhook_id]
    # The worker runs in-process (WORKER_IN_PROCESS default) and processes it there too (P1).
    deadline = time.monotonic() + 15
    while stored_events(database)[0][1] != "processed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_events(database) == [(hook.webhook_id, "processed")]

    stop_like_docker(proc, box.tmp.parent / "serve.log")
    assert run(box, *probe).returncode != 0, "HEALTHCHECK must fail once the service is gone"
    assert snapshot(*visible) == before, "the service wrote outside its volume"
    if os.geteuid() == 0:  # files of the service belong to the image's uid, not to root
        assert {p.stat().st_uid for p in box.tmp.iterdir()} == {box.uid}
