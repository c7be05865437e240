"""The console's access rules (SPEC C1): password, signed session cookie, CSRF, login limits.

The session lives in the cookie itself (signed with itsdangerous, expiry inside the signed
value), so any number of service processes accept it without shared state. The signing key is
derived from the app secret and the console password: changing either logs everyone out.
Logging out forgets the session in this process's memory; another process would accept the
cookie until it expires (`CONSOLE_SESSION_HOURS`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeSerializer

from timedify.settings import Settings

COOKIE = "timedify_console"
_MAX_CLIENTS = 10_000  # bound of the limiter's memory, whatever the number of addresses seen


@dataclass(frozen=True)
class Session:
    """Who holds the cookie: `authenticated` after a login, anonymous on the login page."""

    sid: str
    authenticated: bool
    expires_at: float


class Sessions:
    """Issues and reads session cookies and their CSRF tokens."""

    def __init__(self, settings: Settings) -> None:
        assert settings.console_password is not None  # mounted only when set  # nosec B101
        self._password = hashlib.sha256(settings.console_password.get_secret_value().encode())
        label = b"timedify-console\0" + self._password.digest()
        self._key = hmac.new(
            settings.shopify_api_secret.get_secret_value().encode(), label, hashlib.sha256
        ).digest()
        self._serializer = URLSafeSerializer(self._key, salt="timedify-console-session")
        self.max_age = int(settings.console_session_hours * 3600)
        self.secure = settings.environment == "production"
        self._revoked: dict[str, float] = {}

    def password_ok(self, given: str) -> bool:
        """Constant-time: both sides are hashed first, so their lengths say nothing either."""
        attempt = hashlib.sha256(given.encode()).digest()
        return hmac.compare_digest(attempt, self._password.digest())

    def issue(self, *, authenticated: bool, now: float | None = None) -> tuple[Session, str]:
        """A new session (a fresh id: a login never keeps the anonymous one) and its cookie."""
        expires = (time.time() if now is None else now) + self.max_age
        session = Session(secrets.token_urlsafe(18), authenticated, expires)
        value = self._serializer.dumps({"s": session.sid, "a": authenticated, "e": expires})
        return session, value

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie; None when missing, tampered with, expired or logged out."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
            session = Session(str(data["s"]), data["a"] is True, float(data["e"]))
        except (BadData, KeyError, TypeError, ValueError):
            return None
        current = time.time() if now is None else now
        if session.expires_at <= current or session.sid in self._revoked:
            return None
        return session

    def revoke(self, session: Session) -> None:
        """Logout: this process refuses the cookie from now on."""
        now = time.time()
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.sid] = session.expires_at

    def csrf_token(self, session: Session) -> str:
        """The token every form of this session carries (tied to the session's id)."""
        return hmac.new(self._key, b"csrf\0" + session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(
            self.csrf_token(session).encode(), str(token).encode()
        )


class LoginLimiter:
    """At most `attempts` failed logins per client address in a sliding `window` (in memory:
    per process, forgotten on restart; with several processes each counts its own)."""

    def __init__(self, attempts: int, window: float) -> None:
        self._attempts = attempts
        self._window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        current = time.monotonic() if now is None else now
        failures = self._recent(client, current)
        if len(failures) < self._attempts:
            return 0
        return max(1, int(failures[0] + self._window - current + 1))

    def failed(self, client: str, now: float | None = None) -> None:
        current = time.monotonic() if now is None else now
        if client not in self._failures and len(self._failures) >= _MAX_CLIENTS:
            self._prune(current)
        self._recent(client, current).append(current)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def _prune(self, now: float) -> None:
        for client in list(self._failures):
            if not self._recent(client, now):
                del self._failures[client]
        while len(self._failures) >= _MAX_CLIENTS:  # all recent: forget the oldest client
            del self._failures[next(iter(self._failures))]
