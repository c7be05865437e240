"""W4: every webhook that got 200 survives `kill -9` of the server right after answering."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.support.helpers import events
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.testing import signed_webhook


async def _deliver(url: str, count: int, kill_after: int, service: ServiceProcess) -> set[str]:
    """Send `count` webhooks at concurrency 32; SIGKILL the server after `kill_after` 200s."""
    acked: set[str] = set()
    hooks = [signed_webhook("app/scopes_update", SHOP, SECRET) for _ in range(count)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            hook = hooks[queue.get_nowait()]
            try:
                response = await client.post(
                    url + hook.path(), content=hook.body, headers=hook.headers
                )
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                acked.add(hook.webhook_id)
                if len(acked) == kill_after:
                    service.kill()

    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(32)))
    return acked


def test_acknowledged_webhooks_survive_kill_9(db_url: str, tmp_path: Path) -> None:
    env = settings_env(db_url, tmp_path, WORKER_IN_PROCESS="false")
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    acked = asyncio.run(_deliver(service.url, 400, 150, service))
    assert service.proc is not None
    assert service.proc.returncode == -9
    assert len(acked) >= 150
    stored = {e["webhook_id"] for e in events(db_url)}
    assert acked <= stored, f"{len(acked - stored)} acknowledged webhooks were lost"
    service.start()  # and the killed service starts again on the same database
    assert service.stop_gracefully()
