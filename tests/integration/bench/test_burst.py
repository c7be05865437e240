"""The e2e benchmark's webhooks and backlog count, against the real service on both databases."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from bench import burst, wrk
from sqlalchemy import func, select

from tests.support.helpers import drain
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, make_settings
from timedify.db import make_engine
from timedify.models import EventState, WebhookEvent
from timedify.settings import Settings


def _post(url: str, hook: wrk.Hook, webhook_id: str) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": hook.topic,
        "X-Shopify-Hmac-Sha256": hook.hmac,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": webhook_id,
        "X-Shopify-Shop-Domain": hook.shop,
        "X-Shopify-Triggered-At": "2026-11-27T10:00:00+00:00",
    }
    return httpx.post(url + hook.path, content=hook.body, headers=headers, timeout=10)


def test_every_signed_body_is_accepted_counted_pending_and_applied(settings: Settings) -> None:
    hooks = burst.hooks(SECRET, shops=4)
    assert {h.topic for h in hooks} == set(burst.TOPICS)
    with threaded_server(settings) as (url, _app):
        answers = [_post(url, hook, f"t-{n}").status_code for n, hook in enumerate(hooks)]
    assert answers == [200] * len(hooks)
    with burst.backlog(settings.database_url) as backlog:
        assert backlog.states() == {EventState.RECEIVED: len(hooks)}
        assert backlog.pending() == len(hooks)
        drain(settings)
        assert backlog.pending() == 0
        assert backlog.wait_empty(limit=0)[1] == 0
        assert EventState.DEAD not in backlog.states()


def test_a_body_signed_with_another_secret_is_refused(settings: Settings) -> None:
    hook = burst.hooks("another-secret", shops=1)[0]
    with threaded_server(settings) as (url, _app):
        assert _post(url, hook, "t-1").status_code == 401
    with burst.backlog(settings.database_url) as backlog:
        assert backlog.pending() == 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="the benchmark's load generator")
def test_the_burst_script_sends_every_topic_with_unique_ids(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, tmp_path)
    script = burst.script(tmp_path, SECRET, "t", shops=5)
    with threaded_server(settings) as (url, _app):
        result = wrk.run(url, script, connections=2, seconds=1)
    assert result.requests > 0
    assert (result.errors, result.non_2xx) == (0, 0)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(WebhookEvent.topic, WebhookEvent.shop_domain)).all()
            ids = conn.execute(select(func.count(func.distinct(WebhookEvent.webhook_id)))).scalar()
    finally:
        engine.dispose()
    # A repeated id would be answered 200 as a duplicate and not stored again.
    assert len(rows) >= result.requests
    assert ids == len(rows)
    assert {topic for topic, _shop in rows} == set(burst.TOPICS)
    assert {shop for _topic, shop in rows} == {burst.shop_domain(i) for i in range(5)}
