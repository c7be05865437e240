"""C1 over HTTP: the console is off without a password, and on, every rule of its access.

The real service (uvicorn in a thread, real database); every request is a plain HTTP one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.console import PASSWORD, console_settings, csrf_of, logged_in, login
from tests.support.helpers import store_event, table_rows
from tests.support.rows import dead_letter_row, event_row, insert_rows
from tests.support.servers import ServiceProcess, threaded_server
from tests.support.settings import SHOP, make_settings, settings_env
from timedify.models import DeadLetter, EventState, WebhookEvent
from timedify.web.console.auth import COOKIE, Sessions
from timedify.web.console.common import CSP

PAGES = [
    "/console",
    "/console/chart.json",
    "/console/events?topic=app/uninstalled",
    "/console/events/1",
    "/console/dead-letters",
    "/console/dead-letters/1",
    "/console/compliance",
]
ACTIONS = [
    "/console/dead-letters/1/replay",
    "/console/dead-letters/1/dismiss",
    "/console/dead-letters/replay",
    "/console/logout",
]


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[str]:
    settings = console_settings(db_url, tmp_path, console_login_attempts=3)
    with threaded_server(settings) as (url, _app):
        yield url


def _dead_letter(db_url: str) -> int:
    [pk] = insert_rows(db_url, WebhookEvent, [event_row(age=timedelta(hours=1), state="dead")])
    [dead] = insert_rows(db_url, DeadLetter, [dead_letter_row(pk, resolved_age=None)])
    return dead


def test_console_is_404_without_a_password(db_url: str, tmp_path: Path) -> None:
    with threaded_server(make_settings(db_url, tmp_path)) as (url, _app):
        for path in ["/console", "/console/login", "/console/static/console.js", *ACTIONS]:
            assert httpx.get(url + path).status_code == 404, path


def test_every_page_and_action_without_a_session_goes_to_the_login(
    served: str, db_url: str
) -> None:
    dead = _dead_letter(db_url)
    for path in PAGES:
        answer = httpx.get(served + path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=/console"), path
        assert answer.headers["content-security-policy"] == CSP
    for path in [p.replace("/1/", f"/{dead}/") for p in ACTIONS]:
        assert httpx.post(served + path, data={"csrf": "x"}).status_code == 303, path
    assert table_rows(db_url, DeadLetter)[0]["resolved_at"] is None


def test_posts_without_or_with_a_wrong_csrf_token_are_refused(served: str, db_url: str) -> None:
    dead = _dead_letter(db_url)
    client, token = logged_in(served)
    _other, other_token = logged_in(served)  # a real token, of another session
    for data in [{}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": other_token}]:
        for action in ("replay", "dismiss"):
            answer = client.post(f"/console/dead-letters/{dead}/{action}", data=data)
            assert answer.status_code == 403, (action, data)
            assert answer.headers["content-security-policy"] == CSP
        assert client.post("/console/dead-letters/replay", data=data).status_code == 403
        assert client.post("/console/logout", data=data).status_code == 403
    [row] = table_rows(db_url, DeadLetter)
    assert (row["resolved_at"], row["replays"]) == (None, 0)
    assert client.get("/console").status_code == 200  # still logged in: logout was refused
    done = client.post(f"/console/dead-letters/{dead}/dismiss", data={"csrf": token})
    assert done.status_code == 200
    assert table_rows(db_url, DeadLetter)[0]["resolution"] == "dismissed"


def test_cookie_attributes_and_refused_cookies(served: str, db_url: str, tmp_path: Path) -> None:
    client = httpx.Client(base_url=served, follow_redirects=False)
    answer = login(client)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # not in production (see the next test)
    value = client.cookies[COOKIE]
    sessions = Sessions(console_settings(db_url, tmp_path))
    _session, expired = sessions.issue(authenticated=True, now=time.time() - 13 * 3600)
    _session, anonymous = sessions.issue(authenticated=False)
    tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    forged = value.replace(value.split(".")[0], value.split(".")[0][:-2] + "xy")
    for bad in [expired, anonymous, tampered, forged, "garbage"]:
        answer = httpx.get(served + "/console", cookies={COOKIE: bad})
        assert answer.status_code == 303, bad
    assert httpx.get(served + "/console", cookies={COOKIE: value}).status_code == 200


def test_cookie_is_secure_in_production(db_url: str, tmp_path: Path) -> None:
    settings = console_settings(db_url, tmp_path, environment="production")
    with threaded_server(settings) as (url, _app):
        answer = httpx.get(url + "/console/login")
    assert answer.status_code == 200
    assert "Secure" in answer.headers["set-cookie"]
    assert "HttpOnly" in answer.headers["set-cookie"]


def test_logout_ends_the_session(served: str) -> None:
    client, token = logged_in(served)
    value = client.cookies[COOKIE]
    answer = client.post("/console/logout", data={"csrf": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"
    assert httpx.get(served + "/console", cookies={COOKIE: value}).status_code == 303


def test_failed_logins_are_limited_and_logged_without_the_password(
    db_url: str, tmp_path: Path
) -> None:
    """The real `timedify serve`, so that its log lines are the ones an operator reads."""
    env = settings_env(db_url, tmp_path, CONSOLE_PASSWORD=PASSWORD, CONSOLE_LOGIN_ATTEMPTS="3")
    service = ServiceProcess(env, tmp_path / "serve.log").start()
    try:
        client = httpx.Client(base_url=service.url, follow_redirects=False)
        wrong = "not-the-password-123"
        for _ in range(3):
            assert login(client, wrong).status_code == 401
        limited = login(client, wrong)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert login(client, PASSWORD).status_code == 429  # even the right one, until the wait
    finally:
        service.stop_gracefully()
    logs = service.logs()
    assert logs.count('"console_login_failed"') == 3
    assert '"console_login_limited"' in logs
    assert wrong not in logs
    assert PASSWORD not in logs


def test_login_needs_its_form_token_and_stays_on_the_console(served: str) -> None:
    client = httpx.Client(base_url=served, follow_redirects=False)
    assert client.post("/console/login", data={"password": PASSWORD}).status_code == 403
    form = client.get("/console/login?next=https://evil.example/")
    answer = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"
    form = client.get("/console/login")  # logged in: straight to the console
    assert form.status_code == 303


def test_security_headers_on_every_page(served: str, db_url: str) -> None:
    store_event(db_url, "app/uninstalled", SHOP)
    dead = _dead_letter(db_url)
    client, token = logged_in(served)
    [first] = [r["id"] for r in table_rows(db_url) if r["state"] == EventState.RECEIVED]
    answers = [
        httpx.get(served + "/console/login"),
        httpx.get(served + "/console/static/console.js"),
        *(client.get(p) for p in PAGES),
        client.get(f"/console/events/{first}"),
        client.get(f"/console/dead-letters/{dead}"),
        client.get("/console/events/999999"),
        client.get("/console/events?state=nonsense"),
        client.post(f"/console/dead-letters/{dead}/dismiss", data={"csrf": token}),
    ]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.url
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert [a.status_code for a in answers[-3:]] == [404, 400, 200]
    for answer in answers:  # no inline script anywhere (the CSP would block it)
        assert "<script>" not in answer.text


def test_payload_markup_and_customer_fields_are_never_shown_as_they_are(
    served: str, db_url: str
) -> None:
    payload = {
        "shop_domain": SHOP,
        "customer": {"id": 4242, "email": "john@example.com", "note": "<script>alert(1)</script>"},
        "orders_to_redact": [1],
        "comment": "<img src=x onerror=alert(2)>",
    }
    store_event(db_url, "customers/redact", SHOP, payload=payload)
    [event] = table_rows(db_url)
    client, _token = logged_in(served)
    page = client.get(f"/console/events/{event['id']}").text
    assert "john@example.com" not in page
    assert "4242" not in page
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "[redacted]" in page
