"""Every SQL statement on shops and their offline sessions (S3-S5, S8's `shops list`).

Tokens arrive here already encrypted (`shopify.crypto`) and leave encrypted: this module never
sees a plain token, except a legacy plain-text one it reports for rotation. Plain functions on
the caller's connection and transaction, SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, insert, not_, or_, select, update

from timedify.models import Shop, ShopSession
from timedify.store import appdata

S = ShopSession
SHOPS = Shop.__table__
SESSIONS = ShopSession.__table__


def offline_session_id(shop: str) -> str:
    """The id of a shop's offline session, as Shopify's libraries name it."""
    return f"offline_{shop}"


@dataclass(frozen=True)
class StoredSession:
    """A shop's offline session as stored (tokens encrypted, or legacy plain text)."""

    id: str
    shop: str
    access_token: str
    scope: str | None
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None
    updated_at: datetime

    def __repr__(self) -> str:  # never a token, even encrypted, in a traceback
        return f"StoredSession(shop={self.shop!r}, expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class ShopState:
    """What decides whether a shop's token may be used or refreshed."""

    installed: bool
    needs_reauth_at: datetime | None


class NeedsReauth(NamedTuple):
    domain: str
    since: datetime


def get_session(conn: Connection, shop: str, *, for_update: bool = False) -> StoredSession | None:
    """The offline session; `for_update` takes its row lock on PostgreSQL (SQLite: the caller's
    transaction already holds the database's write lock, `BEGIN IMMEDIATE`)."""
    stmt = select(SESSIONS).where(S.id == offline_session_id(shop))
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    return None if row is None else _session(row)


def shop_state(conn: Connection, shop: str) -> ShopState | None:
    """None when the shop has no row (a session from before shops were recorded)."""
    row = appdata.get_shop(conn, shop)
    if row is None:
        return None
    return ShopState(installed=bool(row["installed"]), needs_reauth_at=row["needs_reauth_at"])


def save_tokens(
    conn: Connection,
    shop: str,
    now: datetime,
    *,
    access_token: str,
    scope: str,
    expires_at: datetime | None,
    refresh_token: str | None,
    refresh_token_expires_at: datetime | None,
) -> None:
    """Store the (encrypted) pair as the shop's offline session, replacing the previous one."""
    values = {
        "access_token": access_token,
        "scope": scope,
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "refresh_token_expires_at": refresh_token_expires_at,
        "refresh_claim": None,
        "refresh_claimed_until": None,
        "updated_at": now,
    }
    sid = offline_session_id(shop)
    done = conn.execute(update(S).where(S.id == sid).values(values))
    if done.rowcount == 0:
        row = {"id": sid, "shop_domain": shop, "is_online": False, "created_at": now, **values}
        conn.execute(insert(S).values(row))


def claim_refresh(conn: Connection, shop: str, claim: str, now: datetime, until: datetime) -> bool:
    """Take the shop's refresh claim until `until`, unless another process holds one that has
    not expired; whether it is ours now. The claim lets the call to Shopify run outside any
    transaction: on SQLite a transaction would hold the one write lock every webhook needs."""
    free = or_(S.refresh_claimed_until.is_(None), S.refresh_claimed_until <= now)
    done = conn.execute(
        update(S)
        .where(S.id == offline_session_id(shop), free)
        .values(refresh_claim=claim, refresh_claimed_until=until)
    )
    return done.rowcount == 1


def release_refresh(conn: Connection, shop: str, claim: str) -> None:
    """Give up our refresh claim (the refresh failed; the next use tries again)."""
    conn.execute(
        update(S)
        .where(S.id == offline_session_id(shop), S.refresh_claim == claim)
        .values(refresh_claim=None, refresh_claimed_until=None)
    )


def mark_installed(conn: Connection, shop: str, now: datetime, *, scopes: str) -> None:
    """A token exchange succeeded: the app is installed now (P5 orders uninstalls by this)."""
    appdata.upsert_shop(
        conn,
        shop,
        now,
        installed=True,
        installed_at=now,
        uninstalled_at=None,
        needs_reauth_at=None,
        scopes=scopes,
        scopes_updated_at=now,
    )


def mark_needs_reauth(conn: Connection, shop: str, now: datetime) -> None:
    """Shopify refused the shop's refresh token: keep the first time it happened."""
    state = shop_state(conn, shop)
    if state is None or state.needs_reauth_at is None:
        appdata.upsert_shop(conn, shop, now, needs_reauth_at=now)


def needing_reauth(conn: Connection) -> list[NeedsReauth]:
    """Installed shops whose token Shopify refused, oldest first (status, alerting-check)."""
    rows = conn.execute(
        select(Shop.domain, Shop.needs_reauth_at)
        .where(Shop.installed.is_(True), Shop.needs_reauth_at.is_not(None))
        .order_by(Shop.needs_reauth_at, Shop.domain)
    )
    return [NeedsReauth(str(r[0]), r[1]) for r in rows if r[1] is not None]


def _refreshable() -> Any:
    """Offline sessions of shops not known to be uninstalled or refused."""
    known_bad = (
        select(Shop.domain)
        .where(or_(Shop.installed.is_(False), Shop.needs_reauth_at.is_not(None)))
        .scalar_subquery()
    )
    return and_(S.is_online.is_(False), S.shop_domain.not_in(known_bad))


def due_for_refresh(conn: Connection, before: datetime) -> list[str]:
    """Shops whose expiring access token ends before `before` (the worker's periodic job)."""
    rows = conn.execute(
        select(S.shop_domain)
        .where(_refreshable(), S.refresh_token.is_not(None), S.expires_at < before)
        .order_by(S.expires_at)
    )
    return [str(r[0]) for r in rows]


def non_expiring(conn: Connection) -> list[str]:
    """Shops still holding a non-expiring offline token (for `shops migrate-tokens`)."""
    rows = conn.execute(
        select(S.shop_domain).where(_refreshable(), S.expires_at.is_(None)).order_by(S.shop_domain)
    )
    return [str(r[0]) for r in rows]


def sessions_not_under(conn: Connection, prefix: str) -> list[str]:
    """Ids of sessions with a token not starting with `prefix` (plain text or another key)."""
    stale = or_(
        not_(S.access_token.startswith(prefix, autoescape=True)),
        and_(
            S.refresh_token.is_not(None), not_(S.refresh_token.startswith(prefix, autoescape=True))
        ),
    )
    return [str(r[0]) for r in conn.execute(select(S.id).where(stale).order_by(S.id))]


def session_tokens(conn: Connection, session_id: str) -> tuple[str, str | None] | None:
    """(access token, refresh token) as stored, row locked on PostgreSQL."""
    stmt = select(S.access_token, S.refresh_token).where(S.id == session_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else (str(row[0]), row[1])


def set_session_tokens(
    conn: Connection, session_id: str, access_token: str, refresh_token: str | None
) -> None:
    """Rewrite a session's stored tokens (re-encryption; the tokens themselves are unchanged)."""
    conn.execute(
        update(S)
        .where(S.id == session_id)
        .values(access_token=access_token, refresh_token=refresh_token)
    )


@dataclass(frozen=True)
class ShopSummary:
    """One line of `shops list`: the shop's state and its token's, never a token."""

    domain: str
    installed: bool | None
    installed_at: datetime | None
    uninstalled_at: datetime | None
    plan_status: str | None
    subscription_active: bool | None
    scopes: str | None
    needs_reauth_at: datetime | None
    synced_at: datetime | None
    has_token: bool
    token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    token_stored_as: str | None  # "encrypted", "plain-text" or None (no token)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            doc[name] = value.isoformat() if isinstance(value, datetime) else value
        doc["scopes"] = [s for s in (self.scopes or "").split(",") if s]
        doc["needs_reauth"] = self.needs_reauth_at is not None
        doc["expiring_token"] = self.has_token and self.token_expires_at is not None
        return doc


def list_shops(conn: Connection, encrypted_prefix: str) -> list[ShopSummary]:
    """Every shop (and every offline session without a shop row), by domain."""
    sessions = {
        str(r["shop_domain"]): r
        for r in conn.execute(select(SESSIONS).where(S.is_online.is_(False))).mappings()
    }
    shops = {str(r["domain"]): r for r in conn.execute(select(SHOPS)).mappings()}
    return [
        _summary(domain, shops.get(domain), sessions.get(domain), encrypted_prefix)
        for domain in sorted(set(shops) | set(sessions))
    ]


def _summary(domain: str, shop: Any, session: Any, prefix: str) -> ShopSummary:
    def field(name: str) -> Any:
        return None if shop is None else shop[name]

    stored_as = None
    if session is not None:
        stored_as = "encrypted" if str(session["access_token"]).startswith(prefix) else "plain-text"
    return ShopSummary(
        domain=domain,
        installed=None if shop is None else bool(shop["installed"]),
        installed_at=field("installed_at"),
        uninstalled_at=field("uninstalled_at"),
        plan_status=field("plan_status"),
        subscription_active=field("subscription_active"),
        scopes=field("scopes") if shop is not None else (session["scope"] if session else None),
        needs_reauth_at=field("needs_reauth_at"),
        synced_at=field("synced_at"),
        has_token=session is not None,
        token_expires_at=None if session is None else session["expires_at"],
        refresh_token_expires_at=None if session is None else session["refresh_token_expires_at"],
        token_stored_as=stored_as,
    )


def _session(row: Any) -> StoredSession:
    return StoredSession(
        id=str(row["id"]),
        shop=str(row["shop_domain"]),
        access_token=str(row["access_token"]),
        scope=row["scope"],
        expires_at=row["expires_at"],
        refresh_token=row["refresh_token"],
        refresh_token_expires_at=row["refresh_token_expires_at"],
        updated_at=row["updated_at"],
    )
