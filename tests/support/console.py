"""The operator console in tests: its password, settings, and a logged-in HTTP client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.support.settings import make_settings
from timedify.settings import Settings

PASSWORD = "correct-horse-battery-staple"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def console_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(db_url, tmp_path, **{"console_password": PASSWORD, **overrides})


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: httpx.Client, password: str = PASSWORD) -> httpx.Response:
    """Open the login form and post `password` with its token (the client keeps the cookie)."""
    form = client.get("/console/login")
    return client.post("/console/login", data={"csrf": csrf_of(form.text), "password": password})


def logged_in(base_url: str) -> tuple[httpx.Client, str]:
    """A client holding a console session, and the session's CSRF token."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
    answer = login(client)
    assert answer.status_code == 303, answer.text
    return client, csrf_of(client.get("/console").text)
