"""One rule for identifiers in logs and storage: a webhook id that is personal data (an e-mail)
is kept and logged as its stand-in by the intake and by the worker alike, in the real
`timedify serve` with its worker."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.checks import wait_for
from tests.support.helpers import events, post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.logs import pseudonym
from timedify.testing import signed_webhook

EMAIL = "jane.doe@example.com"


def test_a_webhook_id_that_is_an_email_is_masked_in_every_line(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = settings_env(sqlite_url, tmp_path, WORKER_POLL_SECONDS="0.05")
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        hook = signed_webhook("app/uninstalled", SHOP, SECRET, webhook_id=EMAIL)
        assert post_webhook(service.url, hook).status_code == 200
        wait_for(
            lambda: [e["state"] for e in events(sqlite_url)] == ["processed"], 20, "processing"
        )
        wait_for(lambda: b"event_processed" in service.log_path.read_bytes(), 10, "its log line")
    finally:
        assert service.stop_gracefully()
    raw = service.log_path.read_bytes()
    assert EMAIL.encode() not in raw
    lines = [orjson.loads(line) for line in raw.splitlines() if line.startswith(b"{")]
    [processed] = [line for line in lines if line.get("event") == "event_processed"]
    assert processed["webhook_id"] == pseudonym(EMAIL)
