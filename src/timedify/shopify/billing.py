"""A shop's billing state (SPEC S7): read from the Admin API, mirrored, published to Liquid.

A shop is *active* when one of its `activeSubscriptions` is `ACTIVE` with `currentPeriodEnd`
in the future; a test charge counts only when `Settings.billing_allows_test_charges`. The state
is mirrored into the app's data (`shops.subscription_active`, `subscription_checked_at`, the
`subscriptions` rows and `plan_status`, as the app_subscriptions/update handler keeps them)
and into the shop metafield `timedify.subscription_active` (boolean) that the theme extension
reads; the metafield is written only when the state changed, and `subscription_active` is only
recorded once it was, so a failed write is tried again at the next read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from timedify.ingest import webhooks
from timedify.logs import get_logger
from timedify.models import utcnow
from timedify.settings import Settings
from timedify.shopify.admin import AdminClient
from timedify.shopify.contracts import ShopifyError, SubscriptionState
from timedify.store import installations

METAFIELD_NAMESPACE = "timedify"
METAFIELD_KEY = "subscription_active"
SUBSCRIPTION_FIELDS = "activeSubscriptions { id name status test currentPeriodEnd }"
BILLING_QUERY = f"""query TimedifyBilling {{
  shop {{ id }}
  currentAppInstallation {{ {SUBSCRIPTION_FIELDS} }}
}}"""
METAFIELDS_SET = """mutation TimedifySubscriptionMetafield($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } }
}"""


def _log() -> Any:
    # Looked up per use, not bound at import: commands run in-process (tests) configure logging
    # once per run, and a bound logger keeps the first run's stream.
    return get_logger("timedify.shopify.billing")


def state_of(
    subscriptions: Sequence[Mapping[str, Any]], now: datetime, *, allow_test: bool
) -> SubscriptionState:
    """The billing state the subscriptions amount to at `now` (pure)."""
    for sub in subscriptions:
        end = webhooks.parse_timestamp(_str(sub.get("currentPeriodEnd")))
        counts = allow_test or not sub.get("test")
        if sub.get("status") == "ACTIVE" and end is not None and end > now and counts:
            return _state(sub, True, end, now)
    first = subscriptions[0] if subscriptions else None
    if first is None:
        return SubscriptionState(False, None, None, None, False, now)
    end = webhooks.parse_timestamp(_str(first.get("currentPeriodEnd")))
    return _state(first, False, end, now)


@dataclass(frozen=True)
class Mirrored:
    """What mirroring a read did: `was` the recorded active flag (None: never read), `changed`
    (that flag or the recorded active subscriptions differed), `published` (the metafield holds
    the state, written now or before)."""

    state: SubscriptionState
    was: bool | None
    changed: bool
    published: bool


class Billing:
    """`BillingReader` (contracts) on the Admin API and the database."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        admin: AdminClient,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._admin = admin
        self._clock = clock
        self._recent: dict[str, SubscriptionState] = {}

    def subscription_state(self, shop: str, *, max_age_seconds: float = 0) -> SubscriptionState:
        """The shop's state; a cached one (this process's last read, or the database's) when
        younger than `max_age_seconds`. Raises the Admin API's errors (ShopifyError)."""
        if max_age_seconds > 0:
            cached = self._cached(shop, max_age_seconds)
            if cached is not None:
                return cached
        return self.refresh(shop)

    def refresh(self, shop: str) -> SubscriptionState:
        """Read the state from the Admin API now and mirror it."""
        data = self._admin.query(shop, "TimedifyBilling", BILLING_QUERY)
        installation = data.get("currentAppInstallation") or {}
        shop_gid = str((data.get("shop") or {}).get("id") or "")
        return self.mirror(shop, shop_gid, installation.get("activeSubscriptions") or []).state

    def mirror(
        self,
        shop: str,
        shop_gid: str,
        subscriptions: Sequence[Mapping[str, Any]],
        *,
        dry_run: bool = False,
    ) -> Mirrored:
        """Record what Shopify listed (`subscriptions` of `currentAppInstallation`): the app's
        data, and the metafield when the state changed. `dry_run` only compares."""
        now = self._clock()
        state = state_of(subscriptions, now, allow_test=self._settings.billing_allows_test_charges)
        with self._engine.connect() as conn:
            recorded = installations.billing_of(conn, shop)
            statuses = installations.subscription_statuses(conn, shop)
        was = recorded["subscription_active"] if recorded is not None else None
        listed = {str(s.get("id")) for s in subscriptions if s.get("status") == "ACTIVE"}
        changed = was != state.active or listed != set(statuses)
        if dry_run:
            return Mirrored(state, was, changed, was == state.active)
        published = was == state.active or self._publish(shop, shop_gid, state.active)
        with self._engine.begin() as conn:
            installations.mirror_subscriptions(conn, shop, subscriptions, now)
            if published:
                installations.record_billing(conn, shop, state.active, now)
        self._recent[shop] = state
        if was != state.active:
            _log().info(
                "billing_state_changed",
                shop=shop,
                active=state.active,
                was=was,
                status=state.status,
                published=published,
            )
        return Mirrored(state, was, changed, published)

    def _cached(self, shop: str, max_age: float) -> SubscriptionState | None:
        now = self._clock()
        with self._engine.connect() as conn:
            recorded = installations.billing_of(conn, shop)
        mine = self._recent.get(shop)
        checked = recorded["subscription_checked_at"] if recorded is not None else None
        if mine is not None and (checked is None or checked <= mine.checked_at):
            return mine if (now - mine.checked_at).total_seconds() <= max_age else None
        if recorded is None or checked is None or recorded["subscription_active"] is None:
            return None
        if (now - checked).total_seconds() > max_age:
            return None
        # Another process read it last: what the database mirrors (no period end, test flag).
        active = bool(recorded["subscription_active"])
        return SubscriptionState(active, recorded["name"], recorded["status"], None, False, checked)

    def _publish(self, shop: str, shop_gid: str, active: bool) -> bool:
        """Write the metafield; False (logged) when Shopify refused or could not be reached."""
        item = {
            "ownerId": shop_gid,
            "namespace": METAFIELD_NAMESPACE,
            "key": METAFIELD_KEY,
            "type": "boolean",
            "value": "true" if active else "false",
        }
        try:
            data = self._admin.query(
                shop, "TimedifySubscriptionMetafield", METAFIELDS_SET, {"metafields": [item]}
            )
        except ShopifyError as exc:
            _log().warning(
                "billing_metafield_failed",
                shop=shop,
                error_class=exc.error_class,
                error_type=type(exc).__name__,
            )
            return False
        errors = (data.get("metafieldsSet") or {}).get("userErrors") or []
        if errors:
            codes = sorted({str(e.get("code")) for e in errors if isinstance(e, dict)})
            _log().warning(
                "billing_metafield_failed", shop=shop, error_class="shopify_query", codes=codes
            )
            return False
        return True


def _state(
    sub: Mapping[str, Any], active: bool, end: datetime | None, now: datetime
) -> SubscriptionState:
    return SubscriptionState(
        active, _str(sub.get("name")), _str(sub.get("status")), end, bool(sub.get("test")), now
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
