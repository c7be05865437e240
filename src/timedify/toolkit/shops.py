"""`timedify shops`: list shops, migrate their tokens, rotate the token key (S4, S5, S8).

Each function works shop by shop (or session by session) in its own short transaction, so a run
interrupted halfway is simply run again: what is done is not done twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from timedify.shopify.contracts import (
    NeedsReauthentication,
    ShopifyError,
    ShopifyUnavailable,
    ShopNotInstalled,
)
from timedify.shopify.crypto import PREFIX, TokenCipher
from timedify.shopify.tokens import TokenManager
from timedify.store import shops
from timedify.store.shops import ShopSummary


def list_shops(engine: Engine) -> list[ShopSummary]:
    """Every shop with its install, billing and token state (no token)."""
    with engine.connect() as conn:
        return shops.list_shops(conn, PREFIX)


@dataclass(frozen=True)
class MigrationLine:
    """One shop of `migrate-tokens`: `migrated`, `would migrate`, `already expiring`,
    `needs re-authentication`, `not installed`, `unavailable` (Shopify did not answer: rerun)
    or `failed` (refused; with the reason)."""

    shop: str
    outcome: str
    detail: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "unavailable", "needs re-authentication")

    def to_json(self) -> dict[str, Any]:
        return {"shop": self.shop, "outcome": self.outcome, "detail": self.detail}


def migrate_tokens(engine: Engine, manager: TokenManager, *, dry_run: bool) -> list[MigrationLine]:
    """Exchange every stored non-expiring offline token for an expiring pair (S4)."""
    with engine.connect() as conn:
        candidates = shops.non_expiring(conn)
    return [_migrate_one(manager, shop, dry_run) for shop in candidates]


def _migrate_one(manager: TokenManager, shop: str, dry_run: bool) -> MigrationLine:
    try:
        return MigrationLine(shop, manager.migrate(shop, dry_run=dry_run))
    except ShopNotInstalled:
        return MigrationLine(shop, "not installed")
    except NeedsReauthentication as exc:
        return MigrationLine(shop, "needs re-authentication", str(exc))
    except ShopifyUnavailable as exc:
        return MigrationLine(shop, "unavailable", str(exc))
    except ShopifyError as exc:
        return MigrationLine(shop, "failed", str(exc))


@dataclass(frozen=True)
class Rotation:
    """What `rotate-key` rewrote: sessions under an older key, and plain-text ones encrypted."""

    reencrypted: int
    encrypted_plain_text: int

    def to_json(self) -> dict[str, int]:
        return {"reencrypted": self.reencrypted, "encrypted_plain_text": self.encrypted_plain_text}


def rotate_key(engine: Engine, cipher: TokenCipher) -> Rotation:
    """Re-encrypt every stored token under the current key (S5); plain text gets encrypted.

    Raises TokenDecryptionError (nothing of that session changed) when a token was written
    under a key that is neither the current nor the previous one."""
    with engine.connect() as conn:
        ids = shops.sessions_not_under(conn, cipher.current_prefix)
    reencrypted = plain = 0
    for session_id in ids:
        with engine.begin() as conn:
            stored = shops.session_tokens(conn, session_id)
            if stored is None:
                continue  # deleted meanwhile (an uninstall)
            access, refresh = stored
            plain += not access.startswith(PREFIX)
            reencrypted += access.startswith(PREFIX)
            shops.set_session_tokens(
                conn,
                session_id,
                cipher.rotate(access),
                cipher.rotate(refresh) if refresh is not None else None,
            )
    return Rotation(reencrypted, plain)
