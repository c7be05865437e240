"""The console's session cookie, CSRF tokens and login limiter (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.console import PASSWORD, console_settings
from timedify.web.console.auth import LoginLimiter, Sessions


def _sessions(tmp_path: Path, **overrides: object) -> Sessions:
    return Sessions(console_settings("sqlite:///unused.sqlite3", tmp_path, **overrides))


def test_password_check(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    assert sessions.password_ok(PASSWORD)
    for wrong in ["", PASSWORD + " ", PASSWORD.upper(), PASSWORD[:-1]]:
        assert not sessions.password_ok(wrong)


def test_a_cookie_reads_back_until_it_expires(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path, console_session_hours=1)
    session, cookie = sessions.issue(authenticated=True, now=1000.0)
    assert sessions.read(cookie, now=1000.0 + 3599) == session
    assert sessions.read(cookie, now=1000.0 + 3600) is None


def test_tampered_or_foreign_cookies_are_refused(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    _session, cookie = sessions.issue(authenticated=False)
    data, signature = cookie.rsplit(".", 1)
    assert sessions.read(data + "." + signature[::-1]) is None
    assert sessions.read(data) is None
    assert sessions.read("") is None
    other = _sessions(tmp_path, console_password="another-password-42")
    assert other.read(cookie) is None  # a new password logs every session out


def test_each_session_has_its_own_csrf_token(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    one, _ = sessions.issue(authenticated=True)
    two, _ = sessions.issue(authenticated=True)
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(two))
    assert not sessions.csrf_ok(one, None)
    assert not sessions.csrf_ok(one, "")


def test_revoked_session_is_refused(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    session, cookie = sessions.issue(authenticated=True)
    sessions.revoke(session)
    assert sessions.read(cookie) is None


def test_limiter_counts_failures_per_client_in_a_sliding_window() -> None:
    limiter = LoginLimiter(attempts=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("a", now=t) == 0
        limiter.failed("a", now=t)
    assert limiter.retry_after("a", now=3.0) == 58
    assert limiter.retry_after("b", now=3.0) == 0  # another address is not held back
    assert limiter.retry_after("a", now=60.5) == 0  # the first failure left the window
    limiter.succeeded("a")
    assert limiter.retry_after("a", now=3.0) == 0


def test_console_password_setting(tmp_path: Path) -> None:
    """Unset or empty: the console is off (in production too); a weak one is refused there."""
    from tests.support.settings import make_settings
    from timedify.errors import ConfigError

    url = "sqlite:///unused.sqlite3"
    assert make_settings(url, tmp_path, environment="production").console_password is None
    assert make_settings(url, tmp_path, console_password="").console_password is None
    assert make_settings(url, tmp_path, console_password="short").console_password is not None
    for weak in ["short", "changeme"]:
        with pytest.raises(ConfigError, match="CONSOLE_PASSWORD"):
            make_settings(url, tmp_path, environment="production", console_password=weak)
    strong = make_settings(url, tmp_path, environment="production", console_password=PASSWORD)
    assert strong.console_password is not None
