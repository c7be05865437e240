"""The data model: the app's own data and the webhook event log.

Tables are declared with SQLAlchemy Core metadata through the ORM's declarative classes; the
migrations in `migrations/` must match them (a test compares the two).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC everywhere and handed back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _naive_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return _aware(datetime.fromisoformat(value) if isinstance(value, str) else value)

    # The worker and the ingest path convert several timestamps per event. SQLAlchemy would
    # convert in two steps (the methods above, then the impl's own processor: on SQLite its
    # DATETIME text formatting and regex parsing); where the driver takes and gives datetimes
    # (psycopg) one step is the methods above without the wrapper, and on SQLite one step each
    # way gives the same text and values in a third of the time. Other drivers keep two steps.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_text
        if dialect.name == "postgresql" and _no_impl_processor(self, dialect):
            return _naive_utc
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_datetime
        if dialect.name == "postgresql" and _no_impl_processor(self, dialect, coltype):
            return _aware_or_none
        return super().result_processor(dialect, coltype)


def _no_impl_processor(decorator: UTCDateTime, dialect: Dialect, *coltype: Any) -> bool:
    impl = decorator.impl_instance.dialect_impl(dialect)
    if coltype:
        return impl.result_processor(dialect, coltype[0]) is None
    return impl.bind_processor(dialect) is None


# `datetime.combine` of the date and the time rather than `replace(tzinfo=...)`, which parses
# its keyword arguments: ~6 x faster in CPython 3.11, the same value.
_combine = datetime.combine


def _naive_utc(value: datetime | None) -> datetime | None:
    """`value` as naive UTC; a naive `value` is refused (its zone is unknown)."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        raise ValueError("naive datetime: timestamps must carry a timezone")
    if zone is not UTC:
        value = value.astimezone(UTC)
    return _combine(value.date(), value.time())


def _aware(value: datetime) -> datetime:
    """A naive UTC `value` (as stored) as an aware one."""
    return _combine(value.date(), value.time(), UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _sqlite_text(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME text (`2024-05-01 12:00:00.000000`) of the UTC time."""
    naive = _naive_utc(value)
    return None if naive is None else naive.isoformat(" ", "microseconds")


def _sqlite_datetime(value: str | None) -> datetime | None:
    return None if value is None else _aware(datetime.fromisoformat(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventState(enum.StrEnum):
    """The life of a stored webhook event (STYLE: the names appear once, here)."""

    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    RETRYING = "retrying"
    DEAD = "dead"
    IGNORED = "ignored"


PENDING_STATES = (EventState.RECEIVED, EventState.RETRYING)
FINISHED_STATES = (EventState.PROCESSED, EventState.IGNORED, EventState.DEAD)
# The rows retention may delete (finished, or synthetic in any state), as SQL. The same text is
# the partial index's predicate and a term of retention's queries: SQLite uses a partial index
# only when the query repeats its WHERE term. `synthetic` alone reads as true/false on both.
RETENTION_INDEX_WHERE = (
    "state IN (" + ", ".join(f"'{s.value}'" for s in FINISHED_STATES) + ") OR synthetic"
)

# States few events are in and no ingest INSERT writes (an unhandled topic is stored `ignored`):
# a partial index on them costs the hot path nothing. Repeated verbatim in the queries that use
# it (SQLite's rule, as above).
RARE_STATES = (EventState.RETRYING, EventState.DEAD)
RARE_STATES_WHERE = "state IN (" + ", ".join(f"'{s.value}'" for s in RARE_STATES) + ")"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class WebhookEvent(Base):
    """One delivery as Shopify sent it: the raw payload and the headers that matter."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(255), unique=True)
    topic: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(255))
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    api_version: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_webhook_events_due", "state", "next_attempt_at"),
        # The console's keyset pages (C3): newest first along (received_at, id), overall, per
        # shop, per topic, and per rare state (the common ones are found along the first).
        Index("ix_webhook_events_received", "received_at", "id"),
        Index("ix_webhook_events_shop_received", "shop_domain", "received_at", "id"),
        Index("ix_webhook_events_topic_received", "topic", "received_at", "id"),
        # The newest processed event per topic (`/health/webhooks`, the console's overview).
        # Partial: the ingest INSERT stores an event unprocessed and never touches it.
        Index(
            "ix_webhook_events_topic_processed",
            "topic",
            "processed_at",
            sqlite_where=text("processed_at IS NOT NULL"),
            postgresql_where=text("processed_at IS NOT NULL"),
        ),
        Index(
            "ix_webhook_events_state_received",
            "state",
            "received_at",
            "id",
            sqlite_where=text(RARE_STATES_WHERE),
            postgresql_where=text(RARE_STATES_WHERE),
        ),
        Index(
            "ix_webhook_events_retention",
            "received_at",
            "id",
            sqlite_where=text(RETENTION_INDEX_WHERE),
            postgresql_where=text(RETENTION_INDEX_WHERE),
        ),
    )


class EventAttempt(Base):
    """Every processing attempt and its error (P2)."""

    __tablename__ = "event_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("webhook_events.id", ondelete="CASCADE"),
        index=True,
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Indexed for the console's chart of the last 24 h (C2).
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    error_class: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)


class DeadLetter(Base):
    """An event that exhausted its attempts (P3); the payload stays on the event row."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("webhook_events.id", ondelete="CASCADE"),
        unique=True,
    )
    topic: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    error: Mapped[str] = mapped_column(Text)
    stack: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replays: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    resolution: Mapped[str | None] = mapped_column(String(32))


class AppliedEvent(Base):
    """Ledger of applied merchant actions: a unique key makes application exactly-once (W3)."""

    __tablename__ = "applied_events"

    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_pk: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Shop(Base):
    """A shop that installed the app."""

    __tablename__ = "shops"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scopes: Mapped[str | None] = mapped_column(Text)
    scopes_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    plan_status: Mapped[str | None] = mapped_column(String(32))
    # S7: the billing state read from the Admin API (None until first read).
    subscription_active: Mapped[bool | None] = mapped_column(Boolean)
    subscription_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # S4: set when Shopify refused the refresh token; the next admin load exchanges again.
    needs_reauth_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # S8: the last reconciliation with the Admin API.
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ShopSession(Base):
    """An offline session: the shop's tokens, encrypted at rest (S5). No user profile is kept."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    access_token: Mapped[str] = mapped_column(Text)
    scope: Mapped[str | None] = mapped_column(Text)
    is_online: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refresh_token: Mapped[str | None] = mapped_column(Text)
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # S4: the process refreshing the token now, and until when its claim holds (one at a time).
    refresh_claim: Mapped[str | None] = mapped_column(String(64))
    refresh_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subscription(Base):
    """Mirror of a shop's app subscription (app_subscriptions/update)."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    shopify_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shopify_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ComplianceRequest(Base):
    """A GDPR/CCPA request from Shopify's mandatory compliance webhooks and its outcome."""

    __tablename__ = "compliance_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    customer_ref: Mapped[str | None] = mapped_column(String(64))
    data_request_ref: Mapped[str | None] = mapped_column(String(64))
    event_pk: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    report: Mapped[str | None] = mapped_column(Text)


class WorkerHeartbeat(Base):
    """One row per worker process; `/health` reads the newest (P1, H1)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed: Mapped[int] = mapped_column(BigInteger, default=0)


webhook_events = WebhookEvent.__table__
