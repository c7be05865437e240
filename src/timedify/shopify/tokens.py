"""A shop's offline token through its life (S3, S4): exchange, refresh, migration.

A refresh first takes the shop's refresh claim in a short transaction that locks the shop (the
offline session's row, `SELECT ... FOR UPDATE`, on PostgreSQL; the database's write lock,
`BEGIN IMMEDIATE`, on SQLite) and reads the session again: a process that finds another's claim
waits for it and then uses the new pair, so one refresh reaches Shopify however many processes,
on however many machines, wanted one. Shopify is called with no transaction open (on SQLite one
would hold the write lock every webhook's commit needs), and the new pair replaces the old,
encrypted (S5), in one more short transaction that also gives the claim up. Tokens never reach a
log line: lines carry the shop, the outcome and `error_class` `shopify_auth`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine

from timedify.logs import get_logger
from timedify.models import utcnow
from timedify.settings import Settings
from timedify.shopify.contracts import (
    InvalidSubjectToken,
    NeedsReauthentication,
    ShopifyAuthError,
    ShopifyError,
    ShopifyUnavailable,
    ShopNotInstalled,
)
from timedify.shopify.crypto import TokenCipher
from timedify.shopify.oauth import InvalidGrant, OAuthClient, TokenGrant
from timedify.store import shops
from timedify.store.shops import StoredSession

log = get_logger("timedify.shopify.tokens")
REFRESH_MARGIN = timedelta(minutes=5)
# The worker looks every minute for tokens ending within ten: a token in use is then refreshed
# by the worker, well before `access_token` would have to.
REFRESH_EVERY = timedelta(minutes=1)
REFRESH_WITHIN = timedelta(minutes=10)
# A claim outlives the longest refresh (the OAuth client's attempts and timeouts) so that a
# process that died mid-refresh frees the shop by itself; a waiter gives up after CLAIM_WAIT.
CLAIM_FOR = timedelta(seconds=60)
CLAIM_WAIT_SECONDS = 30.0
CLAIM_POLL_SECONDS = 0.05
Outcome = Literal["fresh", "refreshed", "needs_reauth", "not_installed", "failed"]


@dataclass
class RefreshSummary:
    """What a periodic refresh did, by outcome (`fresh`: another process had refreshed)."""

    outcomes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, outcome: Outcome, shop: str) -> None:
        self.outcomes.setdefault(outcome, []).append(shop)

    def count(self, outcome: Outcome) -> int:
        return len(self.outcomes.get(outcome, []))


class TokenManager:
    """`TokenSource` and `TokenExchanger` (contracts) on the database, Shopify and the cipher."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        oauth: OAuthClient,
        cipher: TokenCipher,
        *,
        margin: timedelta = REFRESH_MARGIN,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._oauth = oauth
        self._cipher = cipher
        self._margin = margin
        self._now = clock

    # -- TokenSource -----------------------------------------------------------------------------

    def access_token(self, shop: str) -> str:
        """The shop's access token, refreshed first when it ends within the margin."""
        with self._engine.connect() as conn:
            session = self._usable(conn, shop)
        if self._fresh(session, self._now() + self._margin):
            return self._cipher.decrypt(session.access_token)
        return self._refresh(shop, due_before=self._now() + self._margin)[0]

    def after_unauthorized(self, shop: str, rejected: str | None = None) -> str:
        """The Admin API answered 401 with `rejected`: refresh once (unless another process just
        did), or mark the shop as needing re-authentication and raise."""
        return self._refresh(shop, due_before=None, rejected=rejected)[0]

    def mark_needs_reauth(self, shop: str) -> None:
        """The Admin API still refuses a refreshed token: the next admin load exchanges again."""
        with self._engine.begin() as conn:
            shops.mark_needs_reauth(conn, shop, self._now())
        log.warning("shopify_needs_reauth", shop=shop, error_class="shopify_auth")

    # -- TokenExchanger --------------------------------------------------------------------------

    def ensure_offline_token(self, shop: str, id_token: str) -> None:
        """Exchange the session token unless the shop already has a usable expiring token."""
        with self._engine.connect() as conn:
            if self._exchange_not_needed(conn, shop):
                return
        # Outside any transaction (see the module). Two page loads exchanging at once both get
        # valid pairs from Shopify; the later one is kept.
        try:
            grant = self._oauth.token_exchange(shop, id_token)
        except ShopifyError as exc:
            _log_failure("shopify_token_exchange_failed", shop, exc)
            raise
        with self._engine.begin() as conn:
            self._store(conn, shop, grant)
            shops.mark_installed(conn, shop, self._now(), scopes=grant.scope)
        log.info("shopify_token_exchanged", shop=shop, outcome="stored", scope=grant.scope)

    def _exchange_not_needed(self, conn: Connection, shop: str) -> bool:
        session = shops.get_session(conn, shop)
        state = shops.shop_state(conn, shop)
        if session is None or session.expires_at is None:
            return False  # none, or non-expiring: an exchange gives an expiring one (S3)
        if state is not None and (not state.installed or state.needs_reauth_at is not None):
            return False
        now = self._now()
        if self._fresh(session, now + self._margin):
            return True
        ends = session.refresh_token_expires_at
        return session.refresh_token is not None and (ends is None or ends > now)

    # -- periodic job ----------------------------------------------------------------------------

    def refresh_expiring(self, within: timedelta = REFRESH_WITHIN) -> RefreshSummary:
        """Refresh every installed shop's token that ends within `within` (the worker's job)."""
        summary = RefreshSummary()
        due_before = self._now() + within
        with self._engine.connect() as conn:
            due = shops.due_for_refresh(conn, due_before)
        for shop in due:
            summary.add(self.refresh_one(shop, due_before), shop)
        if due:
            log.info(
                "shopify_tokens_refreshed",
                due=len(due),
                **{k: len(v) for k, v in summary.outcomes.items()},
            )
        return summary

    def refresh_one(self, shop: str, due_before: datetime) -> Outcome:
        """Refresh one shop's token if it ends before `due_before`; the outcome, never raises
        for Shopify's answers (they are logged)."""
        try:
            _token, refreshed = self._refresh(shop, due_before=due_before)
        except NeedsReauthentication:
            return "needs_reauth"
        except ShopNotInstalled:
            return "not_installed"
        except ShopifyError:
            return "failed"
        return "refreshed" if refreshed else "fresh"

    # -- migration -------------------------------------------------------------------------------

    def migrate(self, shop: str, *, dry_run: bool = False) -> str:
        """Turn the shop's non-expiring token into an expiring pair (S4 migrate-tokens).

        `migrated`, `would migrate`, or `already expiring` (idempotent: a rerun finds nothing
        to do); raises NeedsReauthentication when Shopify refuses the old token."""
        with self._engine.connect() as conn:
            session = self._usable(conn, shop)
        if session.expires_at is not None:
            return "already expiring"
        if dry_run:
            return "would migrate"
        # Shopify answers the same old token with the same pair: a rerun, or two runs at once,
        # store the same thing.
        try:
            grant = self._oauth.migrate(shop, self._cipher.decrypt(session.access_token))
        except (InvalidGrant, InvalidSubjectToken) as exc:  # the old token is revoked
            _log_failure("shopify_token_migration_failed", shop, exc)
            with self._engine.begin() as conn:
                shops.mark_needs_reauth(conn, shop, self._now())
            raise NeedsReauthentication(str(exc)) from None
        except ShopifyError as exc:
            _log_failure("shopify_token_migration_failed", shop, exc)
            raise
        with self._engine.begin() as conn:
            self._store(conn, shop, grant)
        log.info("shopify_token_migrated", shop=shop, outcome="migrated")
        return "migrated"

    # -- internals -------------------------------------------------------------------------------

    def _refresh(
        self, shop: str, *, due_before: datetime | None, rejected: str | None = None
    ) -> tuple[str, bool]:
        """Refresh under the shop's lock; `due_before` None forces it (after a 401).

        The token, and whether this call refreshed it (False: another process had)."""
        claim = uuid.uuid4().hex
        waited_until = time.monotonic() + CLAIM_WAIT_SECONDS
        while True:
            with self._engine.begin() as conn:
                session = self._usable(conn, shop, lock=True)
                current = self._cipher.decrypt(session.access_token)
                if due_before is not None and self._fresh(session, due_before):
                    return current, False  # refreshed by another process meanwhile
                if due_before is None and rejected is not None and current != rejected:
                    return current, False  # another process replaced the refused token already
                now = self._now()
                if shops.claim_refresh(conn, shop, claim, now, now + CLAIM_FOR):
                    break
            if time.monotonic() > waited_until:
                raise ShopifyUnavailable(f"{shop}: another process has been refreshing too long")
            time.sleep(CLAIM_POLL_SECONDS)  # another process is refreshing: use its result
        try:
            grant = self._refresh_grant(shop, session)
        except (InvalidGrant, NeedsReauthentication) as exc:
            _log_failure("shopify_token_refresh_failed", shop, exc)
            with self._engine.begin() as conn:
                shops.mark_needs_reauth(conn, shop, self._now())
                shops.release_refresh(conn, shop, claim)
            raise NeedsReauthentication(f"{shop} needs re-authentication: {exc}") from None
        except BaseException as exc:
            if isinstance(exc, ShopifyError):
                _log_failure("shopify_token_refresh_failed", shop, exc)
            # The old pair stays: the next use retries with the same refresh token.
            with self._engine.begin() as conn:
                shops.release_refresh(conn, shop, claim)
            raise
        with self._engine.begin() as conn:
            self._store(conn, shop, grant)  # gives the claim up too
        log.info("shopify_token_refreshed", shop=shop, outcome="refreshed")
        return grant.access_token, True

    def _refresh_grant(self, shop: str, session: StoredSession) -> TokenGrant:
        if session.refresh_token is None:
            raise NeedsReauthentication("the token does not expire and cannot be refreshed")
        ends = session.refresh_token_expires_at
        if ends is not None and ends <= self._now():
            raise NeedsReauthentication("the refresh token has expired")
        return self._oauth.refresh(shop, self._cipher.decrypt(session.refresh_token))

    def _usable(self, conn: Connection, shop: str, *, lock: bool = False) -> StoredSession:
        """The session of a shop whose token may be used; the errors of `contracts` otherwise."""
        session = shops.get_session(conn, shop, for_update=lock)
        state = shops.shop_state(conn, shop)
        if state is not None and not state.installed:
            raise ShopNotInstalled(f"{shop} has uninstalled the app")
        if state is not None and state.needs_reauth_at is not None:
            raise NeedsReauthentication(f"{shop} needs re-authentication (open the app)")
        if session is None:
            raise NeedsReauthentication(f"{shop} has no offline token (open the app)")
        return session

    @staticmethod
    def _fresh(session: StoredSession, until: datetime) -> bool:
        return session.expires_at is None or session.expires_at > until

    def _store(self, conn: Connection, shop: str, grant: TokenGrant) -> None:
        encrypt = self._cipher.encrypt
        shops.save_tokens(
            conn,
            shop,
            self._now(),
            access_token=encrypt(grant.access_token),
            scope=grant.scope,
            expires_at=grant.expires_at,
            refresh_token=encrypt(grant.refresh_token) if grant.refresh_token else None,
            refresh_token_expires_at=grant.refresh_token_expires_at,
        )


def _log_failure(event: str, shop: str, exc: Exception) -> None:
    error_class = "shopify_auth" if isinstance(exc, ShopifyAuthError) else "shopify_unavailable"
    log.warning(event, shop=shop, error_class=error_class, error_type=type(exc).__name__)
