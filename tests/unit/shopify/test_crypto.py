"""S5: tokens at rest are Fernet ciphertexts under TOKEN_ENCRYPTION_KEY, the previous key read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.settings import PREVIOUS_TOKEN_KEY, TOKEN_KEY, make_settings
from timedify.errors import ConfigError
from timedify.shopify.crypto import TokenCipher, TokenDecryptionError, generate_key, is_encrypted

TOKEN = "shpat_0123456789abcdef0123456789abcdef"


@given(st.text(max_size=300))
def test_round_trip_of_any_text(token: str) -> None:
    cipher = TokenCipher(TOKEN_KEY)
    stored = cipher.encrypt(token)
    assert is_encrypted(stored)
    assert cipher.decrypt(stored) == token


def test_ciphertext_reveals_nothing_and_differs_each_time() -> None:
    cipher = TokenCipher(TOKEN_KEY)
    first, second = cipher.encrypt(TOKEN), cipher.encrypt(TOKEN)
    assert first != second
    assert TOKEN not in first
    assert "0123456789abcdef" not in first


def test_the_previous_key_is_read_and_its_values_need_rotation() -> None:
    old = TokenCipher(PREVIOUS_TOKEN_KEY).encrypt(TOKEN)
    cipher = TokenCipher(TOKEN_KEY, PREVIOUS_TOKEN_KEY)
    assert cipher.decrypt(old) == TOKEN
    assert cipher.needs_rotation(old)
    rotated = cipher.rotate(old)
    assert not cipher.needs_rotation(rotated)
    assert TokenCipher(TOKEN_KEY).decrypt(rotated) == TOKEN


def test_a_wrong_key_is_a_clear_error_without_the_token() -> None:
    stored = TokenCipher(PREVIOUS_TOKEN_KEY).encrypt(TOKEN)
    with pytest.raises(TokenDecryptionError) as info:
        TokenCipher(TOKEN_KEY).decrypt(stored)
    assert "TOKEN_ENCRYPTION_KEY" in str(info.value)
    assert TOKEN not in str(info.value)
    assert stored.split(":")[2] not in str(info.value)


def test_a_tampered_ciphertext_is_refused() -> None:
    cipher = TokenCipher(TOKEN_KEY)
    stored = cipher.encrypt(TOKEN)
    flipped = stored[:-5] + ("A" if stored[-5] != "A" else "B") + stored[-4:]
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(flipped)


def test_plain_text_is_read_as_is_and_always_needs_rotation() -> None:
    cipher = TokenCipher(TOKEN_KEY)
    assert not is_encrypted(TOKEN)
    assert cipher.decrypt(TOKEN) == TOKEN
    assert cipher.needs_rotation(TOKEN)
    assert cipher.decrypt(cipher.rotate(TOKEN)) == TOKEN


def test_generated_keys_are_fernet_keys_and_unique() -> None:
    key = generate_key()
    assert len(key) == 44
    assert key != generate_key()
    assert TokenCipher(key).decrypt(TokenCipher(key).encrypt("x")) == "x"


def test_from_settings_needs_a_key(tmp_path: Path) -> None:
    settings = make_settings("sqlite:///x.db", tmp_path, token_encryption_key=None)
    with pytest.raises(ConfigError) as info:
        TokenCipher.from_settings(settings)
    assert "TOKEN_ENCRYPTION_KEY" in info.value.problems[0]
    both = make_settings(
        "sqlite:///x.db", tmp_path, token_encryption_key_previous=PREVIOUS_TOKEN_KEY
    )
    old = TokenCipher(PREVIOUS_TOKEN_KEY).encrypt(TOKEN)
    assert TokenCipher.from_settings(both).decrypt(old) == TOKEN


def test_settings_refuse_a_malformed_key_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_settings("sqlite:///x.db", tmp_path, token_encryption_key="not-a-key-at-all")
    (problem,) = info.value.problems
    assert problem.startswith("TOKEN_ENCRYPTION_KEY: not a Fernet key")
    assert "not-a-key-at-all" not in problem


def test_production_requires_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_settings(
            "sqlite:///x.db", tmp_path, environment="production", token_encryption_key=None
        )
    assert any("TOKEN_ENCRYPTION_KEY" in p for p in info.value.problems)
    ok = make_settings("sqlite:///x.db", tmp_path, environment="production")
    assert ok.token_encryption_key is not None
