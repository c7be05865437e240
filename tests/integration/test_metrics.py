"""H4: /metrics counts exactly what was sent, per topic and reason, behind an optional token."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import post_webhook
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings
from timedify.ingest import webhooks
from timedify.testing import signed_webhook


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_match_what_was_sent(db_url: str, tmp_path: Path) -> None:
    sent = {"app/uninstalled": 3, "shop/redact": 2, "customers/data_request": 1}
    with threaded_server(make_settings(db_url, tmp_path, metrics_token="scrape-token-1")) as (
        url,
        _,
    ):
        for topic, count in sent.items():
            for _ in range(count):
                assert post_webhook(url, signed_webhook(topic, SHOP, SECRET)).status_code == 200
        again = signed_webhook("shop/redact", SHOP, SECRET)
        for _ in range(2):
            assert post_webhook(url, again).status_code == 200  # new, then duplicate
        synthetic = signed_webhook("shop/redact", webhooks.SYNTHETIC_SHOP_DOMAIN, SECRET)
        assert post_webhook(url, synthetic).status_code == 200
        for _ in range(4):
            assert (
                post_webhook(url, signed_webhook("app/uninstalled", SHOP, "wrong")).status_code
                == 401
            )
        for topic in ("orders/create", "products/update"):  # handled as ignored, label bounded
            assert (
                post_webhook(url, signed_webhook(topic, SHOP, SECRET), "/webhooks").status_code
                == 200
            )
        bad_json = signed_webhook("shop/redact", SHOP, SECRET, payload=b"[1]")
        assert post_webhook(url, bad_json).status_code == 400
        assert httpx.get(url + "/metrics").status_code == 401
        assert (
            httpx.get(url + "/metrics", headers={"authorization": "Bearer wrong"}).status_code
            == 401
        )
        text = httpx.get(url + "/metrics", headers={"authorization": "Bearer scrape-token-1"}).text
    got = samples(text)

    def value(name: str, **labels: str) -> float:
        return got.get((name, tuple(sorted(labels.items()))), 0.0)

    acked = "timedify_webhooks_acked_total"
    assert value(acked, topic="app/uninstalled", outcome="new") == 3
    assert value(acked, topic="shop/redact", outcome="new") == 3
    assert value(acked, topic="shop/redact", outcome="duplicate") == 1
    assert value(acked, topic="shop/redact", outcome="synthetic") == 1
    assert value(acked, topic="customers/data_request", outcome="new") == 1
    received = "timedify_webhooks_received_total"
    assert value(received, topic="shop/redact") == 6  # signed ones only, the bad JSON included
    assert value(received, topic="other") == 2
    assert value(acked, topic="other", outcome="new") == 2
    assert not any(labels and ("topic", "orders/create") in labels for _, labels in got)
    rejected = "timedify_webhooks_rejected_total"
    assert value(rejected, topic="app/uninstalled", reason="invalid_signature") == 4
    assert value(rejected, topic="shop/redact", reason="invalid_json") == 1
    assert value("timedify_webhook_ack_seconds_count") == 11  # every 200, duplicates included
    # Backlog gauges come from the database; the synthetic event is not in them.
    assert value("timedify_webhook_backlog", topic="shop/redact") == 3
    assert value("timedify_webhook_backlog", topic="app/uninstalled") == 3
    assert value("timedify_dead_letters_unresolved", topic="shop/redact") == 0
