"""SPEC S2: what makes a session token trusted, rule by rule, without a server."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from tests.support.settings import PREVIOUS_SECRET, SECRET, SHOP, make_settings
from timedify.shopify.session_tokens import (
    LEEWAY_SECONDS,
    InvalidSessionToken,
    SessionToken,
    SessionTokenVerifier,
)
from timedify.testing import session_token

# The test secrets are shorter than Shopify's (which are at least 32 bytes).
pytestmark = pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")

API_KEY = "test-key"
NOW = 1_750_000_000.0


def _verifier(*secrets: str) -> SessionTokenVerifier:
    return SessionTokenVerifier(API_KEY, [s.encode() for s in (secrets or (SECRET,))])


def _token(**options: object) -> str:
    values: dict[str, object] = {"secret": SECRET, "api_key": API_KEY, "now": NOW, **options}
    return session_token(SHOP, **values)  # type: ignore[arg-type]


def _reason(token: str, *secrets: str, now: float = NOW) -> str:
    with pytest.raises(InvalidSessionToken) as caught:
        _verifier(*secrets).verify(token, now=now)
    return caught.value.reason


def test_a_valid_token_gives_shop_user_session_and_expiry() -> None:
    token = _token(user_id="902541635", session_id="sid-1", exp_in=60)
    assert _verifier().verify(token, now=NOW) == SessionToken(
        shop=SHOP, user_id="902541635", session_id="sid-1", expires_at=int(NOW + 60)
    )


def test_the_verifier_for_settings_uses_the_api_key_and_both_secrets(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/x.sqlite3", tmp_path, shopify_api_secret_previous=PREVIOUS_SECRET
    )
    verifier = SessionTokenVerifier.for_settings(settings)
    for secret in (SECRET, PREVIOUS_SECRET):
        token = session_token(SHOP, secret=secret, api_key=settings.shopify_api_key)
        assert verifier.verify(token).shop == SHOP


def test_the_clock_defaults_to_now() -> None:
    token = session_token(SHOP, secret=SECRET, api_key=API_KEY)
    assert _verifier().verify(token).shop == SHOP
    expired = session_token(SHOP, secret=SECRET, api_key=API_KEY, exp_in=-LEEWAY_SECONDS - 5)
    assert _reason(expired, now=time.time()) == "expired"


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    token = _token(secret=PREVIOUS_SECRET)
    assert _verifier(SECRET, PREVIOUS_SECRET).verify(token, now=NOW).shop == SHOP


def test_a_secret_that_is_not_configured_is_refused() -> None:
    assert _reason(_token(secret=PREVIOUS_SECRET)) == "bad_signature"
    assert (
        _reason(_token(secret="someone-else-entirely-0123456789ab"), SECRET, PREVIOUS_SECRET)
        == "bad_signature"
    )


def test_an_expired_token_from_the_previous_secret_says_expired_not_bad_signature() -> None:
    token = _token(secret=PREVIOUS_SECRET, exp_in=-60)
    assert _reason(token, SECRET, PREVIOUS_SECRET) == "expired"


@pytest.mark.parametrize(
    ("offset", "valid"),
    [
        (0, True),
        (LEEWAY_SECONDS - 1, True),  # past exp, within the leeway
        (LEEWAY_SECONDS, False),
        (LEEWAY_SECONDS + 30, False),
    ],
)
def test_exp_holds_with_ten_seconds_of_leeway(offset: float, valid: bool) -> None:
    token = _token(exp_in=60)
    now = NOW + 60 + offset
    if valid:
        assert _verifier().verify(token, now=now).shop == SHOP
    else:
        assert _reason(token, now=now) == "expired"


@pytest.mark.parametrize(
    ("early", "valid"),
    [(0, True), (LEEWAY_SECONDS, True), (LEEWAY_SECONDS + 1, False), (300, False)],
)
def test_nbf_holds_with_ten_seconds_of_leeway(early: float, valid: bool) -> None:
    token = _token(nbf_in=early, exp_in=early + 60)
    if valid:
        assert _verifier().verify(token, now=NOW).shop == SHOP
    else:
        assert _reason(token) == "not_yet_valid"


def test_only_time_window_failures_count_as_expired() -> None:
    assert InvalidSessionToken("expired").expired
    assert InvalidSessionToken("not_yet_valid").expired
    assert not InvalidSessionToken("bad_signature").expired


@pytest.mark.parametrize("audience", ["other-key", "", ["test-key", "other-key"], ["test-key"]])
def test_aud_must_be_exactly_the_api_key(audience: object) -> None:
    """A list containing the key is not the key: the token was minted for several apps."""
    reason = _reason(_token(audience=audience))
    assert reason in ("wrong_audience", "missing_claim")


@pytest.mark.parametrize("claim", ["iss", "dest", "aud", "sub", "exp", "nbf"])
def test_every_claim_the_decision_needs_is_required(claim: str) -> None:
    assert _reason(_token(omit=(claim,))) == "missing_claim"


def test_claims_not_needed_may_be_absent() -> None:
    token = _token(omit=("sid", "jti", "iat"))
    assert _verifier().verify(token, now=NOW).session_id is None


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"dest": "https://other-shop.myshopify.com"}, "issuer_destination_mismatch"),
        ({"iss": "https://other-shop.myshopify.com/admin"}, "issuer_destination_mismatch"),
        ({"dest": "https://evil.example.com"}, "invalid_destination"),
        ({"iss": "https://evil.example.com/admin"}, "invalid_issuer"),
        ({"dest": f"http://{SHOP}"}, "invalid_destination"),
        ({"iss": f"http://{SHOP}/admin"}, "invalid_issuer"),
        ({"dest": SHOP}, "invalid_destination"),
        ({"dest": f"https://{SHOP}:8443"}, "invalid_destination"),
        ({"dest": f"https://user@{SHOP}"}, "invalid_destination"),
        ({"dest": "https://[::1"}, "invalid_destination"),
        ({"extra": {"dest": 42}}, "invalid_destination"),
        ({"dest": "https://shop.myshopify.com.evil.com"}, "invalid_destination"),
    ],
)
def test_iss_and_dest_name_the_same_valid_shop(options: dict[str, object], reason: str) -> None:
    assert _reason(_token(**options)) == reason


def test_iss_and_dest_hosts_compare_case_insensitively() -> None:
    token = _token(dest=f"https://{SHOP.upper()}", iss=f"https://{SHOP}/admin")
    assert _verifier().verify(token, now=NOW).shop == SHOP


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_only_hs256_is_accepted(algorithm: str) -> None:
    assert _reason(_token(algorithm=algorithm)) == "wrong_algorithm"


def test_an_unsigned_token_is_refused() -> None:
    claims = jwt.decode(_token(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    assert _reason(unsigned) == "wrong_algorithm"


def test_a_tampered_payload_is_refused() -> None:
    header, _payload, signature = _token().split(".")
    other = _token(user_id="1", dest="https://x.myshopify.com", iss="https://x.myshopify.com/a")
    assert _reason(f"{header}.{other.split('.')[1]}.{signature}") == "bad_signature"


def test_a_tampered_signature_is_refused() -> None:
    token = _token()
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert _reason(flipped) == "bad_signature"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "a.b.c.d", "eyJ.eyJ.x"])
def test_garbage_is_malformed(token: str) -> None:
    assert _reason(token) == "malformed"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [({"exp": "soon"}, "malformed_claims"), ({"nbf": True}, "malformed_claims")],
)
def test_time_claims_must_be_numbers(extra: dict[str, object], reason: str) -> None:
    assert _reason(_token(extra=extra)) == reason


def test_a_non_string_subject_is_refused() -> None:
    assert _reason(_token(extra={"sub": 42})) == "invalid_claims"


def test_the_reason_never_carries_the_token() -> None:
    token = _token(secret="wrong-secret-0123456789abcdefghij")
    with pytest.raises(InvalidSessionToken) as caught:
        _verifier().verify(token, now=NOW)
    assert token not in str(caught.value)
    assert token.split(".")[1] not in repr(caught.value)


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        SessionTokenVerifier(API_KEY, [])
