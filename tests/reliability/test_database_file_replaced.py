"""The SQLite file deleted or replaced under a running service (an operator's `rm`, a volume
re-created, a restore): no webhook is acknowledged unless its row is in the file at the
configured path (W4); `/health` fails meanwhile; the service recovers once a database is back
there (`timedify migrate`, a restored copy) without a restart. Real `timedify serve`, SQLite.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.figures import record
from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.db import sqlite_path
from timedify.testing import SignedWebhook, signed_webhook


@pytest.fixture
def service(sqlite_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = settings_env(sqlite_url, tmp_path, WORKER_IN_PROCESS="false")
    proc = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        yield proc
    finally:
        assert proc.stop_gracefully()


def _hooks(count: int) -> list[SignedWebhook]:
    return [signed_webhook("app/scopes_update", SHOP, SECRET) for _ in range(count)]


def _deliver_until_acknowledged(url: str, hooks: list[SignedWebhook], seconds: float) -> set[str]:
    """Send each hook again until it gets 200, as Shopify does; the ids acknowledged."""
    acked: set[str] = set()
    deadline = time.monotonic() + seconds
    while len(acked) < len(hooks) and time.monotonic() < deadline:
        for hook in hooks:
            if hook.webhook_id not in acked and post_webhook(url, hook).status_code == 200:
                acked.add(hook.webhook_id)
        time.sleep(0.1)
    return acked


def _refused_while_missing(service: ServiceProcess, hooks: list[SignedWebhook]) -> None:
    for hook in hooks:
        response = post_webhook(service.url, hook, timeout=5)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert response.headers["content-type"].startswith("application/json")
    assert httpx.get(service.url + "/health", timeout=2).status_code == 503


def test_deleted_file_refuses_webhooks_and_migrate_brings_them_back(
    service: ServiceProcess, sqlite_url: str, tmp_path: Path
) -> None:
    path = sqlite_path(sqlite_url)
    assert path is not None
    before = _hooks(5)
    assert _deliver_until_acknowledged(service.url, before, 5) == {h.webhook_id for h in before}
    path.unlink()  # the operator's `rm`: WAL and shared memory stay, as they would
    during = _hooks(20)
    _refused_while_missing(service, during)
    assert not path.exists(), "the service never creates an empty database in its place"

    done = run_cli(settings_env(sqlite_url, tmp_path), "migrate")
    assert done.returncode == 0, done.stderr
    started = time.monotonic()
    _deliver_until_acknowledged(service.url, during[:1], 10)
    recovered_s = time.monotonic() - started  # migrate's exit to the first 200
    acked = _deliver_until_acknowledged(service.url, during, 10)
    assert acked == {h.webhook_id for h in during}
    assert httpx.get(service.url + "/health", timeout=2).status_code == 200
    assert service.stop_gracefully()
    stored = [e["webhook_id"] for e in events(sqlite_url)]
    record(
        "SQLite file deleted, then migrate (sqlite)",
        sent=len(during),
        acknowledged=len(acked),
        lost=len(acked - set(stored)),
        stored_twice=len(stored) - len(set(stored)),
        recovery_s=round(recovered_s, 3),
    )
    assert acked <= set(stored), "every acknowledged webhook is in the file at the path"


def test_replaced_file_refuses_until_its_connections_are_renewed(
    service: ServiceProcess, sqlite_url: str, tmp_path: Path
) -> None:
    path = sqlite_path(sqlite_url)
    assert path is not None
    first = _hooks(5)
    assert len(_deliver_until_acknowledged(service.url, first, 5)) == 5
    # A volume re-created from a backup: the data directory (WAL included) is replaced.
    copy = tmp_path / "restored.sqlite3"
    done = run_cli(settings_env(sqlite_url, tmp_path), "backup", "--output", str(copy))
    assert done.returncode == 0, done.stderr
    shutil.move(path.parent, tmp_path / "old-volume")
    path.parent.mkdir()
    shutil.move(copy, path)
    later = _hooks(20)
    acked = _deliver_until_acknowledged(service.url, later, 10)
    assert acked == {h.webhook_id for h in later}
    assert service.stop_gracefully()
    stored = {e["webhook_id"] for e in events(sqlite_url)}
    assert acked <= stored, "acknowledged into the restored file, not the replaced one"
