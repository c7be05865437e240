"""S5: `config check` validates the token keys without printing them."""

from __future__ import annotations

from tests.support.settings import PREVIOUS_TOKEN_KEY, TOKEN_KEY
from timedify.toolkit.config_check import check_config

BASE = {
    "SHOPIFY_API_KEY": "key",
    "SHOPIFY_API_SECRET": "a-real-secret-0123456789",
    "SHOPIFY_APP_URL": "https://app.example.com",
}


def _check(**env: str) -> dict[str, tuple[bool | None, str]]:
    checks = check_config(None, {**BASE, **env})
    return {c.name: (c.ok, c.reason) for c in checks if c.name.startswith("TOKEN_")}


def test_keys_are_checked_and_never_shown() -> None:
    good = _check(TOKEN_ENCRYPTION_KEY=TOKEN_KEY, TOKEN_ENCRYPTION_KEY_PREVIOUS=PREVIOUS_TOKEN_KEY)
    assert good["TOKEN_ENCRYPTION_KEY"] == (True, "set (secret, value hidden)")
    assert good["TOKEN_ENCRYPTION_KEY_PREVIOUS"][0] is True
    bad = _check(TOKEN_ENCRYPTION_KEY="wrong-shape-key")
    assert bad["TOKEN_ENCRYPTION_KEY"][0] is False
    assert "Fernet" in bad["TOKEN_ENCRYPTION_KEY"][1]
    assert "wrong-shape-key" not in str(bad)


def test_missing_key_warns_in_development_and_fails_in_production() -> None:
    assert _check()["TOKEN_ENCRYPTION_KEY"][0] is None
    production = _check(ENVIRONMENT="production")
    assert production["TOKEN_ENCRYPTION_KEY"][0] is False


def test_a_previous_key_equal_to_the_current_one_warns() -> None:
    same = _check(TOKEN_ENCRYPTION_KEY=TOKEN_KEY, TOKEN_ENCRYPTION_KEY_PREVIOUS=TOKEN_KEY)
    assert same["TOKEN_ENCRYPTION_KEY_PREVIOUS"][0] is None
    assert TOKEN_KEY not in str(same)
