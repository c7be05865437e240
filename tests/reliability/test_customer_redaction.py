"""Customer compliance requests waiting in a backlog (P4): two `customers/redact` of the same
customer and a `customers/data_request` each get their compliance record and complete, and
after the redaction nothing of the customer is kept - not in a payload, and not in the
identifier columns or the ledger when a delivery used an e-mail or a phone as an id. Real
`timedify serve` and a separate `timedify worker` started on the backlog, both databases.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.helpers import post_webhook, table_rows
from tests.support.servers import ServiceProcess, WorkerProcess
from tests.support.settings import SECRET, SHOP, settings_env
from timedify.models import AppliedEvent, ComplianceRequest, DeadLetter, EventState, WebhookEvent
from timedify.testing import SignedWebhook, signed_webhook

EMAIL, PHONE = "john@example.com", "+15556251199"
FINISHED = {EventState.PROCESSED, EventState.IGNORED}


def _backlog() -> list[SignedWebhook]:
    first = signed_webhook("customers/redact", SHOP, SECRET)
    data_request = signed_webhook("customers/data_request", SHOP, SECRET)
    second = signed_webhook("customers/redact", SHOP, SECRET)  # a new request, a new event id
    odd = signed_webhook("app/scopes_update", SHOP, SECRET, webhook_id=EMAIL, event_id=PHONE)
    odd.headers["X-Shopify-Api-Version"] = EMAIL
    return [odd, first, data_request, second]


def _all_finished(db_url: str, count: int, seconds: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + seconds
    while True:
        rows = table_rows(db_url, WebhookEvent)
        if len(rows) == count and all(r["state"] in FINISHED for r in rows):
            return rows
        if time.monotonic() > deadline or any(r["state"] == EventState.DEAD for r in rows):
            return rows
        time.sleep(0.1)


def test_a_backlog_of_requests_about_one_customer_completes_each(
    db_url: str, tmp_path: Path
) -> None:
    # One event per claim: each request reads its payload after the previous one was applied.
    env = settings_env(
        db_url,
        tmp_path,
        WORKER_IN_PROCESS="false",
        WORKER_POLL_SECONDS="0.05",
        WORKER_BATCH_SIZE="1",
    )
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        hooks = _backlog()
        assert [post_webhook(service.url, h, timeout=5).status_code for h in hooks] == [200] * 4
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        try:
            rows = _all_finished(db_url, len(hooks))
        finally:
            worker.terminate()
    finally:
        assert service.stop_gracefully()

    assert [r["state"] for r in rows if r["state"] not in FINISHED] == []
    assert table_rows(db_url, DeadLetter) == []
    requests = table_rows(db_url, ComplianceRequest)
    assert sorted(str(r["kind"]) for r in requests) == [
        "customers/data_request",
        "customers/redact",
        "customers/redact",
    ]
    assert all(r["status"] == "completed" for r in requests)

    kept = [
        str(r[column])
        for r in rows
        for column in ("webhook_id", "event_id", "api_version", "payload")
        if r[column] is not None
    ]
    kept += [str(r["event_key"]) for r in table_rows(db_url, AppliedEvent)]
    assert not [value for value in kept if EMAIL in value or PHONE in value]
