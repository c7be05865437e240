"""Shopify tokens at rest (S5): Fernet (AES-128-CBC + HMAC-SHA256), authenticated.

A stored value is `fernet:<key id>:<Fernet token>`. The key id (8 hex digits of a SHA-256 of the
key, which reveals nothing of it) says which key wrote the value, so finding the rows a rotation
must rewrite is one SQL query, not a trial decryption of every row. A value without the
`fernet:` prefix is a plain-text token from before encryption: it is read as it is, and
`timedify shops rotate-key` encrypts it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from timedify.errors import ConfigError, TimedifyError
from timedify.settings import Settings

PREFIX = "fernet:"


class TokenDecryptionError(TimedifyError):
    """A stored token could not be decrypted with TOKEN_ENCRYPTION_KEY or its previous key."""

    exit_code = 2


def generate_key() -> str:
    """A fresh key for TOKEN_ENCRYPTION_KEY: 32 random bytes, URL-safe base64."""
    return Fernet.generate_key().decode("ascii")


def key_id(key: str) -> str:
    """The short, non-secret name of a key that prefixes what it encrypts."""
    return hashlib.sha256(b"timedify-token-key:" + key.encode("ascii")).hexdigest()[:8]


def is_encrypted(value: str) -> bool:
    """Whether a stored value is a ciphertext of ours (else a plain-text token)."""
    return value.startswith(PREFIX)


@dataclass(frozen=True)
class _Key:
    kid: str
    fernet: Fernet


class TokenCipher:
    """Encrypts under the current key; decrypts under the current or the previous one."""

    def __init__(self, current: str, previous: str | None = None) -> None:
        keys = [current] if previous is None or previous == current else [current, previous]
        try:
            self._keys = [_Key(key_id(k), Fernet(k.encode("ascii"))) for k in keys]
        except (ValueError, UnicodeEncodeError):
            raise ConfigError(["TOKEN_ENCRYPTION_KEY: not a Fernet key"]) from None
        self._any = MultiFernet([k.fernet for k in self._keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        """The cipher of TOKEN_ENCRYPTION_KEY (+ _PREVIOUS); ConfigError when it is not set."""
        if settings.token_encryption_key is None:
            raise ConfigError(
                [
                    "TOKEN_ENCRYPTION_KEY: missing (required to store Shopify tokens; "
                    "`timedify shops generate-key` prints one)"
                ]
            )
        previous = settings.token_encryption_key_previous
        return cls(
            settings.token_encryption_key.get_secret_value(),
            previous.get_secret_value() if previous is not None else None,
        )

    @property
    def current_prefix(self) -> str:
        """What every value encrypted under the current key starts with."""
        return f"{PREFIX}{self._keys[0].kid}:"

    def encrypt(self, token: str) -> str:
        return self.current_prefix + self._keys[0].fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The token of a stored value; a plain-text (legacy) value is returned as it is."""
        if not is_encrypted(stored):
            return stored
        kid, _, body = stored[len(PREFIX) :].partition(":")
        fernet = next((k.fernet for k in self._keys if k.kid == kid), self._any)
        try:
            return fernet.decrypt(body.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            # Never the value in the message: only which key wrote it.
            raise TokenDecryptionError(
                f"a stored Shopify token (key id {kid or '?'}) cannot be decrypted with "
                "TOKEN_ENCRYPTION_KEY or TOKEN_ENCRYPTION_KEY_PREVIOUS"
            ) from None

    def needs_rotation(self, stored: str) -> bool:
        """True for plain text and for values written under another key than the current one."""
        return not stored.startswith(self.current_prefix)

    def rotate(self, stored: str) -> str:
        """The value re-encrypted under the current key (plain text is encrypted)."""
        return stored if not self.needs_rotation(stored) else self.encrypt(self.decrypt(stored))
