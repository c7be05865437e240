"""SPEC H1/H2: /health, /health/live and /health/webhooks against a real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support.helpers import post_webhook
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings
from timedify import migrate
from timedify.db import make_engine
from timedify.testing import signed_webhook


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    with threaded_server(make_settings(db_url, tmp_path)) as pair:
        yield pair


def test_health_document_format(served: tuple[str, Any]) -> None:
    """IETF health format; without a worker heartbeat the status is warn, which is still 200."""
    url, _app = served
    response = httpx.get(url + "/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    doc = response.json()
    assert doc["status"] == "warn"
    assert set(doc["checks"]) >= {
        "database:connection",
        "database:migrations",
        "database:writes",
        "worker:heartbeat",
        "webhooks:backlog",
        "webhooks:deadLetters",
    }
    assert doc["checks"]["worker:heartbeat"][0]["status"] == "warn"
    assert doc["checks"]["database:migrations"][0]["status"] == "pass"


def test_health_fails_on_a_database_behind_the_code(tmp_path: Path) -> None:
    """An unmigrated database: /health says fail and names the fix."""
    settings = make_settings(f"sqlite:///{tmp_path}/empty.sqlite3", tmp_path)
    make_engine(settings.database_url).connect().close()  # creates the empty file
    with threaded_server(settings) as (url, _app):
        response = httpx.get(url + "/health")
    assert response.status_code == 503
    migrations = response.json()["checks"]["database:migrations"][0]
    assert migrations["status"] == "fail"
    assert "timedify migrate" in migrations["output"]


def test_a_migration_while_serving_shows_at_the_next_probe(tmp_path: Path) -> None:
    """A schema behind the code is read again on every probe (the current one is cached)."""
    settings = make_settings(f"sqlite:///{tmp_path}/late.sqlite3", tmp_path)
    engine = make_engine(settings.database_url)
    engine.connect().close()
    with threaded_server(settings) as (url, _app):
        assert httpx.get(url + "/health").status_code == 503
        migrate.upgrade(engine)
        deadline = time.monotonic() + 2
        while httpx.get(url + "/health").status_code != 200:
            assert time.monotonic() < deadline, "the migrated schema was not seen"
            time.sleep(0.05)
    engine.dispose()


def test_health_connection_cannot_write(served: tuple[str, Any]) -> None:
    """H1: /health does not write; its connections are read-only at the database level."""
    _url, app = served
    with app.services.read_engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("DELETE FROM shops"))


def test_live_has_no_dependencies(served: tuple[str, Any]) -> None:
    url, _app = served
    response = httpx.get(url + "/health/live")
    assert (response.status_code, response.json()["status"]) == (200, "pass")


def test_webhooks_health_counts_pending_per_topic(served: tuple[str, Any]) -> None:
    url, _app = served
    for topic in ("app/uninstalled", "app/uninstalled", "shop/redact"):
        assert post_webhook(url, signed_webhook(topic, SHOP, SECRET)).status_code == 200
    topics = httpx.get(url + "/health/webhooks").json()["topics"]
    assert topics["app/uninstalled"]["pending"] == 2
    assert topics["app/uninstalled"]["received_in_window"] == 2
    assert topics["shop/redact"]["pending"] == 1
    assert topics["customers/redact"]["pending"] == 0
    assert topics["app/uninstalled"]["last_received_at"] is not None
    backlog = httpx.get(url + "/health").json()["checks"]["webhooks:backlog"]
    assert {c["componentId"]: c["observedValue"] for c in backlog} == {
        "app/uninstalled": 2,
        "shop/redact": 1,
    }


def test_metrics_count_what_was_sent(served: tuple[str, Any]) -> None:
    url, _app = served
    post_webhook(url, signed_webhook("app/uninstalled", SHOP, SECRET))
    post_webhook(url, signed_webhook("app/uninstalled", SHOP, "wrong"))
    body = httpx.get(url + "/metrics").text
    assert 'timedify_webhooks_acked_total{outcome="new",topic="app/uninstalled"} 1.0' in body
    assert (
        'timedify_webhooks_rejected_total{reason="invalid_signature",topic="app/uninstalled"} 1.0'
        in body
    )
    assert 'timedify_webhook_backlog{topic="app/uninstalled"} 1.0' in body


def test_a_reused_answer_never_hides_a_change_this_process_knows_of(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Between two probes polling gets the same report, until the worker or the writes change."""
    from timedify.ingest.committer import CommitState
    from timedify.web.health import HealthDocument, HealthProbe

    engine = make_engine(sqlite_url)
    state = CommitState()
    worker = {"alive": True}
    probe = HealthProbe(
        make_settings(sqlite_url, tmp_path),
        engine,
        state,
        migrate.head_revision(),
        lambda: worker["alive"],
    )
    document = HealthDocument("test")

    async def poll() -> list[tuple[int, str, dict[str, Any]]]:
        answers = []

        async def ask() -> None:
            report = await probe.run()
            status, body = document.render(report)
            doc = orjson.loads(body)
            answers.append((status, doc["status"], doc["checks"]))
            reports.append(report)

        reports: list[Any] = []
        await ask()
        await ask()
        assert reports[1] is reports[0], "an unchanged reading is one report"
        worker["alive"] = False
        await ask()
        worker["alive"] = True
        state.consecutive_failures, state.last_error_class = 1, "db"
        await ask()
        state.consecutive_failures = 0
        await ask()
        return answers

    try:
        answers = asyncio.run(poll())
    finally:
        probe.close()
        engine.dispose()
    assert [(status, word) for status, word, _ in answers] == [
        (200, "warn"),  # no worker heartbeat in this database yet
        (200, "warn"),
        (503, "fail"),
        (503, "fail"),
        (200, "warn"),
    ]
    assert "in-process worker has stopped" in answers[2][2]["worker:heartbeat"][0]["output"]
    assert answers[3][2]["database:writes"][0]["status"] == "fail"
    assert answers[4][2]["database:writes"][0]["status"] == "pass"
