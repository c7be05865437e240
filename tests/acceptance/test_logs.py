"""H3: JSON lines with stable event names; no secret, signature or personal data, ever."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from tests.support.helpers import post_webhook
from tests.support.servers import ServiceProcess
from tests.support.settings import PREVIOUS_SECRET, SECRET, SHOP, settings_env
from timedify.logs import pseudonym
from timedify.testing import sample_payload, signed_webhook

PERSONAL = ("john@example.com", "+15556251199", "Jane Roe")


def test_logs_are_json_and_leak_nothing(sqlite_url: str, tmp_path: Path) -> None:
    env = settings_env(
        sqlite_url,
        tmp_path,
        SHOPIFY_API_SECRET_PREVIOUS=PREVIOUS_SECRET,
        LOG_FILE="timedify.log",
        WORKER_IN_PROCESS="false",
    )
    service = ServiceProcess(env, tmp_path / "stdout.log").start()
    signatures = []
    try:
        for topic in ("customers/data_request", "customers/redact", "shop/redact"):
            payload = sample_payload(topic, SHOP)
            payload.setdefault("customer", {})["first_name"] = "Jane Roe"
            for secret in (SECRET, PREVIOUS_SECRET, "wrong-secret"):
                hook = signed_webhook(topic, SHOP, secret, payload=payload)
                signatures.append(hook.headers["X-Shopify-Hmac-Sha256"])
                post_webhook(service.url, hook)
        bad = signed_webhook("customers/redact", SHOP, SECRET, payload=b"john@example.com")
        post_webhook(service.url, bad)
        # Header values are the sender's text: an e-mail put in one is not logged, whether the
        # request is refused unsigned, refused signed, or accepted.
        for secret, topic in (("wrong", "john@example.com"), (SECRET, "shop/redact")):
            hook = signed_webhook("shop/redact", SHOP, secret, webhook_id="john@example.com")
            hook.headers["X-Shopify-Topic"] = topic
            post_webhook(service.url, hook)
        odd = signed_webhook("shop/redact", SHOP, SECRET, webhook_id="Jane Roe")
        odd.headers["X-Shopify-Shop-Domain"] = "Jane Roe"
        post_webhook(service.url, odd)
        httpx.get(service.url + "/health")
    finally:
        assert service.stop_gracefully()
    stdout = (tmp_path / "stdout.log").read_text()
    file_log = (tmp_path / "timedify.log").read_text()
    assert file_log.strip(), "LOG_FILE under TMP_DIR receives the same lines"
    records = [orjson.loads(line) for line in stdout.splitlines() if line.strip()]
    names = {r["event"] for r in records}
    assert {"webhook_accepted", "webhook_rejected", "service_started"} <= names
    assert all({"time", "level", "event"} <= set(r) for r in records)
    for forbidden in (SECRET, PREVIOUS_SECRET, *signatures, *PERSONAL):
        assert forbidden not in stdout
        assert forbidden not in file_log
    accepted = [r for r in records if r["event"] == "webhook_accepted"]
    assert any(r["webhook_id"] == pseudonym("john@example.com") for r in accepted)
    refused = [r for r in records if r["event"] == "webhook_rejected"]
    assert any(r.get("topic") == "[not an identifier]" for r in refused)
