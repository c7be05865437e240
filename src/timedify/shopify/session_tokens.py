"""Session tokens of the embedded admin (SPEC S2): the JWT App Bridge hands the page.

HS256, signed with the app's secret (the previous one is accepted during a rotation, as for
webhooks); `aud` is the API key; `exp`/`nbf` hold with 10 s of leeway; `iss`
(`https://{shop}/admin`) and `dest` (`https://{shop}`) name the same, valid myshopify domain.
A failure is one exception type carrying a short reason, never the token.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from timedify.ingest.webhooks import valid_shop_domain
from timedify.settings import Settings

LEEWAY_SECONDS = 10
ALGORITHM = "HS256"
# The claims a decision or the result depends on; others Shopify sends (iat, jti, sid, sig)
# are not needed here, so their absence is no reason to lock a merchant out.
REQUIRED_CLAIMS = ("iss", "dest", "aud", "sub", "exp", "nbf")

# The HMAC key is the app secret Shopify issued: its length is not ours to choose, and PyJWT's
# warning about short keys would be a plain-text line among the service's JSON logs.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


class InvalidSessionToken(Exception):
    """A session token that must not be trusted; `reason` is safe to log and to show."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    @property
    def expired(self) -> bool:
        """Only the token's time window is wrong: a fresh token from App Bridge will do."""
        return self.reason in ("expired", "not_yet_valid")


@dataclass(frozen=True)
class SessionToken:
    """What a verified token says: the shop, the admin user, the session, when it expires."""

    shop: str
    user_id: str
    session_id: str | None
    expires_at: int


class SessionTokenVerifier:
    """Verifies session tokens against the API key and every configured secret."""

    def __init__(self, api_key: str, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed")
        self._api_key = api_key
        self._secrets = tuple(secrets)

    @classmethod
    def for_settings(cls, settings: Settings) -> SessionTokenVerifier:
        """The app's API key; the current secret and, during a rotation, the previous one."""
        return cls(settings.shopify_api_key, settings.webhook_secrets())

    def verify(self, token: str, *, now: float | None = None) -> SessionToken:
        """The token's claims if it is valid now, else `InvalidSessionToken`."""
        claims = self._decode(token, time.time() if now is None else now)
        shop = _shop_of(claims)
        session_id = claims.get("sid")
        return SessionToken(
            shop=shop,
            user_id=str(claims["sub"]),
            session_id=session_id if isinstance(session_id, str) else None,
            expires_at=int(claims["exp"]),
        )

    def _decode(self, token: str, now: float) -> dict[str, Any]:
        if not token or token.count(".") != 2:
            raise InvalidSessionToken("malformed")
        for secret in self._secrets:
            try:
                return _decode_with(token, secret, self._api_key, now)
            except jwt.InvalidSignatureError:
                continue  # maybe signed with the other secret of a rotation
            except jwt.PyJWTError as exc:
                # PyJWT checks the signature before the claims: this secret signed it.
                raise InvalidSessionToken(_reason(exc)) from None
        raise InvalidSessionToken("bad_signature")


def _decode_with(token: str, secret: bytes, api_key: str, now: float) -> dict[str, Any]:
    # The time window is checked here against `now` (PyJWT would read the clock itself);
    # `nbf` covers what `iat` would say.
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=api_key,
        options={
            "require": list(REQUIRED_CLAIMS),
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "strict_aud": True,  # exactly the key, not a list that happens to contain it
        },
    )
    _check_window(claims, now)
    return claims


def _check_window(claims: dict[str, Any], now: float) -> None:
    exp, nbf = claims["exp"], claims["nbf"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, nbf)):
        raise InvalidSessionToken("malformed_claims")
    if now >= exp + LEEWAY_SECONDS:
        raise InvalidSessionToken("expired")
    if now < nbf - LEEWAY_SECONDS:
        raise InvalidSessionToken("not_yet_valid")


def _shop_of(claims: dict[str, Any]) -> str:
    iss, dest = _https_host(claims["iss"]), _https_host(claims["dest"])
    if iss is None or not valid_shop_domain(iss):
        raise InvalidSessionToken("invalid_issuer")
    if dest is None or not valid_shop_domain(dest):
        raise InvalidSessionToken("invalid_destination")
    if iss != dest:
        raise InvalidSessionToken("issuer_destination_mismatch")
    return dest


def _https_host(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or port is not None or parts.username or parts.password:
        return None
    return parts.hostname


_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidAlgorithmError, "wrong_algorithm"),
    (jwt.DecodeError, "malformed"),
)


def _reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "invalid_claims"
