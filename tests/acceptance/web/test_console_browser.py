"""The console as a person uses it: Playwright driving Debian's chromium against `timedify
serve` (real process, real database, both kinds), nothing leaving loopback.

Screenshots of every page go to the test's directory, or to `$CONSOLE_SCREENSHOTS` (the docs'
images are made with `CONSOLE_SCREENSHOTS=docs/images`).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from tests.support.browser import chromium, offline_context
from tests.support.console import PASSWORD
from tests.support.handlers import BROKEN, EMAIL
from tests.support.helpers import drain, store_event, table_rows
from tests.support.rows import event_row, insert_rows
from tests.support.servers import ServiceProcess
from tests.support.settings import SHOP, make_settings, settings_env
from timedify.models import DeadLetter, EventAttempt, EventState, WebhookEvent

OTHER_SHOP = "other-shop.myshopify.com"
XSS = "<script>window.__xss = 1</script>"


def _history(db_url: str) -> None:
    """A day of processed events with their attempts (so the chart has something to draw)."""
    topics = ["app/uninstalled", "app/scopes_update", "app_subscriptions/update"]
    rows = [
        event_row(
            age=timedelta(seconds=(86 + i % 7 * 20) * i + 30),
            topic=topics[i % 3],
            shop=f"s{i % 9}.myshopify.com",
        )
        for i in range(800)
    ]
    ids = insert_rows(db_url, WebhookEvent, rows)
    attempts = []
    for i, (pk, row) in enumerate(zip(ids, rows, strict=True)):
        done = row["received_at"] + timedelta(milliseconds=40)
        outcome = "retrying" if i % 17 == 0 else "processed"
        attempts.append(
            {
                "event_pk": pk,
                "attempt": 1,
                "started_at": row["received_at"],
                "finished_at": done,
                "outcome": outcome,
                "error_class": "Timeout" if outcome != "processed" else None,
            }
        )
    insert_rows(db_url, EventAttempt, attempts)


def _screens(tmp_path: Path) -> Path:
    target = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path / "screens")
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_operator_session(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, retry_max_attempts=2, retry_base_seconds=0.01)
    _history(db_url)
    # A dead letter a fixed handler cures (replayed), one that can never apply (dismissed).
    store_event(db_url, "customers/redact", SHOP)
    store_event(db_url, "app_subscriptions/update", OTHER_SHOP, payload={"nothing": "useful"})
    store_event(db_url, "app/uninstalled", OTHER_SHOP, payload={"id": 1, "domain": XSS})
    drain(settings, BROKEN)
    dead = {d["topic"]: d["id"] for d in table_rows(db_url, DeadLetter)}
    assert set(dead) == {"customers/redact", "app_subscriptions/update"}

    env = settings_env(db_url, tmp_path, CONSOLE_PASSWORD=PASSWORD)
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    shots = _screens(tmp_path)
    errors: list[str] = []
    try:
        with chromium() as browser:
            context = offline_context(browser, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            base = service.url

            page.goto(base + "/console")
            assert page.url.startswith(base + "/console/login")
            page.fill("input[name=password]", "wrong-password-123")
            page.click("button[type=submit]")
            assert page.get_by_role("alert").inner_text() == "Wrong password."
            page.screenshot(path=str(shots / "console-login.png"))
            errors.clear()  # the refused login's 401 is logged by chromium as an error
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            assert page.url == base + "/console"

            page.wait_for_selector("#chart[data-drawn=true] canvas")
            assert page.get_attribute("#chart", "data-points") == "288"
            assert page.inner_text("#dead-letters") == "2"
            page.screenshot(path=str(shots / "console-overview.png"), full_page=True)

            page.click("nav >> text=Events")
            page.select_option("select[name=topic]", "app/uninstalled")
            page.fill("input[name=shop]", OTHER_SHOP)
            page.click("form.filters button")
            rows = page.locator("#events tbody tr")
            assert rows.count() == 1
            assert "app/uninstalled" in rows.first.inner_text()
            assert OTHER_SHOP in rows.first.inner_text()
            page.goto(base + "/console/events")
            page.screenshot(path=str(shots / "console-events.png"), full_page=True)

            page.goto(base + "/console/events?topic=app/uninstalled&shop=" + OTHER_SHOP)
            page.click("#events tbody tr >> a")
            payload = page.inner_text("#payload")
            assert XSS in payload  # shown as text...
            assert page.evaluate("typeof window.__xss") == "undefined"  # ...never run

            page.goto(base + "/console/events?topic=customers/redact")
            page.click("#events tbody tr >> a")
            payload = page.inner_text("#payload")
            assert "[redacted]" in payload
            assert EMAIL not in page.content()
            assert page.locator("#attempts tbody tr").count() == 2
            page.screenshot(path=str(shots / "console-event.png"), full_page=True)

            page.click("nav >> text=Dead letters")
            assert page.locator("#dead-letters tbody tr").count() == 2
            page.screenshot(path=str(shots / "console-dead-letters.png"), full_page=True)
            page.click(f"#dead-letters a[href='/console/dead-letters/{dead['customers/redact']}']")
            assert "Traceback" in page.inner_text("#stack")
            page.screenshot(path=str(shots / "console-dead-letter.png"), full_page=True)
            page.click("form[action$='/replay'] button")
            assert "1 applied, 0 failed" in page.inner_text("#result-message")
            assert "processed" in page.inner_text("#results")
            page.screenshot(path=str(shots / "console-replayed.png"))

            page.click("nav >> text=Dead letters")
            assert page.locator("#dead-letters tbody tr").count() == 1
            page.click("#dead-letters form[action$='/dismiss'] button")
            assert "dismissed" in page.inner_text("#result-message")

            page.click("nav >> text=Compliance")
            assert "customers/redact" in page.inner_text("#compliance")
            page.screenshot(path=str(shots / "console-compliance.png"), full_page=True)

            page.click("nav >> text=Shops")
            assert OTHER_SHOP in page.inner_text("#shops")  # its uninstall made it known
            page.screenshot(path=str(shots / "console-shops.png"), full_page=True)

            page.click("form.logout button")
            assert page.url.startswith(base + "/console/login")
            page.goto(base + "/console/dead-letters")
            assert page.url.startswith(base + "/console/login")
            context.close()
    finally:
        service.stop_gracefully()

    assert errors == []  # no CSP violation, no script error
    states = {
        e["topic"]: e["state"] for e in table_rows(db_url) if e["shop_domain"] in (SHOP, OTHER_SHOP)
    }
    assert states["customers/redact"] == EventState.PROCESSED
    resolutions = {d["topic"]: d["resolution"] for d in table_rows(db_url, DeadLetter)}
    assert resolutions == {"customers/redact": "replayed", "app_subscriptions/update": "dismissed"}
    logs = service.logs()
    assert '"console_login_failed"' in logs
    assert "wrong-password-123" not in logs
    assert PASSWORD not in logs
