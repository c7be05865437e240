"""`shops sync` (SPEC S8): repair what lost or late webhooks left wrong, from the Admin API.

For each shop, `currentAppInstallation` says what is true now: the granted scopes, the active
subscriptions, and whether the app is installed at all (an uninstalled app's token answers 401,
even after a renewal). Whatever the app's data says otherwise is repaired as the webhook would
have done it; every repair is logged (`shop_repaired`), counted (metric) and reported.
`run_due` is the worker's daily run: a bounded number of shops not synced for
`SHOPS_SYNC_INTERVAL_HOURS`, claimed so that several workers share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from timedify.logs import get_logger
from timedify.metrics import Metrics
from timedify.models import utcnow
from timedify.settings import Settings
from timedify.shopify.admin import AdminClient, AdminUnauthorized
from timedify.shopify.billing import SUBSCRIPTION_FIELDS, Billing
from timedify.shopify.contracts import NeedsReauthentication, ShopifyError, ShopNotInstalled
from timedify.store import installations

INSTALLATION_QUERY = f"""query TimedifyInstallation {{
  shop {{ id }}
  currentAppInstallation {{ accessScopes {{ handle }} {SUBSCRIPTION_FIELDS} }}
}}"""


def _log() -> Any:
    # Looked up per use, not bound at import: commands run in-process (tests) configure logging
    # once per run, and a bound logger keeps the first run's stream.
    return get_logger("timedify.toolkit.shops_sync")


@dataclass(frozen=True)
class Repair:
    """One thing set right: `kind` scopes, subscription or installed; before and after."""

    shop: str
    kind: str
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, Any]:
        return {"shop": self.shop, "kind": self.kind, "before": self.before, "after": self.after}


@dataclass
class ShopResult:
    """`status`: ok (nothing wrong), repaired, needs_reauth (no usable token: skipped), or
    unreachable (Shopify did not answer usefully: nothing known)."""

    shop: str
    status: str = "ok"
    repairs: list[Repair] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "status": self.status,
            "repairs": [r.to_json() for r in self.repairs],
            "error": self.error,
        }


@dataclass
class SyncReport:
    dry_run: bool
    shops: list[ShopResult] = field(default_factory=list)

    @property
    def repairs(self) -> list[Repair]:
        return [r for shop in self.shops for r in shop.repairs]

    @property
    def unreachable(self) -> list[ShopResult]:
        return [s for s in self.shops if s.status == "unreachable"]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "shops": [s.to_json() for s in self.shops],
            "repairs": len(self.repairs),
            "unreachable": len(self.unreachable),
        }


def sync(
    engine: Engine,
    settings: Settings,
    admin: AdminClient,
    shops: Sequence[str] | None = None,
    dry_run: bool = False,
    *,
    metrics: Metrics | None = None,
) -> SyncReport:
    """Reconcile every installed shop (or exactly `shops`); `dry_run` repairs nothing."""
    with engine.connect() as conn:
        rows = installations.installed_shops(conn, shops)
    known = {row["domain"] for row in rows}
    report = SyncReport(dry_run)
    report.shops.extend(
        ShopResult(s, "unknown", error="no such shop") for s in shops or () if s not in known
    )
    billing = Billing(engine, settings, admin)
    for row in rows:
        result = _sync_shop(engine, admin, billing, row, dry_run)
        for repair in result.repairs:
            _log().info("shop_repaired", dry_run=dry_run, **repair.to_json())
            if metrics is not None and not dry_run:
                metrics.shop_repairs.labels(repair.kind).inc()
        report.shops.append(result)
    return report


def run_due(
    engine: Engine,
    settings: Settings,
    admin: AdminClient,
    *,
    limit: int = 20,
    metrics: Metrics | None = None,
) -> SyncReport:
    """The worker's daily run: up to `limit` shops last synced over the interval ago."""
    if settings.shops_sync_interval_hours <= 0:
        return SyncReport(False)
    now = utcnow()
    with engine.begin() as conn:
        due = installations.claim_due(
            conn, now - timedelta(hours=settings.shops_sync_interval_hours), now, limit
        )
    if not due:
        return SyncReport(False)
    report = sync(engine, settings, admin, due, metrics=metrics)
    _log().info(
        "shops_synced",
        shops=len(report.shops),
        repairs=len(report.repairs),
        unreachable=len(report.unreachable),
    )
    return report


def _sync_shop(
    engine: Engine, admin: AdminClient, billing: Billing, row: Any, dry_run: bool
) -> ShopResult:
    shop = str(row["domain"])
    result = ShopResult(shop)
    try:
        data = admin.query(shop, "TimedifyInstallation", INSTALLATION_QUERY)
    except (AdminUnauthorized, ShopNotInstalled):
        if row["installed"]:
            _repair(engine, result, "installed", "installed", "uninstalled", dry_run)
        return result
    except NeedsReauthentication as exc:
        return ShopResult(shop, "needs_reauth", error=str(exc))
    except ShopifyError as exc:
        return ShopResult(shop, "unreachable", error=f"{type(exc).__name__}: {exc}")
    installation = data.get("currentAppInstallation") or {}
    if not row["installed"]:
        _repair(engine, result, "installed", "uninstalled", "installed", dry_run)
    granted = _scopes(installation.get("accessScopes"))
    if granted != _normalised(row["scopes"]):
        _repair(engine, result, "scopes", row["scopes"], granted, dry_run)
    subs = installation.get("activeSubscriptions") or []
    shop_gid = str((data.get("shop") or {}).get("id") or "")
    mirrored = billing.mirror(shop, shop_gid, subs, dry_run=dry_run)
    if mirrored.changed:
        before = None if mirrored.was is None else _active(mirrored.was)
        result.repairs.append(Repair(shop, "subscription", before, _active(mirrored.state.active)))
    if not dry_run:
        with engine.begin() as conn:
            installations.mark_synced(conn, shop, utcnow())
    if result.repairs:
        result.status = "repaired"
    return result


def _repair(
    engine: Engine, result: ShopResult, kind: str, before: Any, after: Any, dry_run: bool
) -> None:
    result.repairs.append(Repair(result.shop, kind, before, after))
    result.status = "repaired"
    if dry_run:
        return
    now = utcnow()
    with engine.begin() as conn:
        if kind == "scopes":
            installations.set_scopes(conn, result.shop, str(after), now)
        elif after == "uninstalled":
            installations.mark_uninstalled(conn, result.shop, now)
        else:
            installations.mark_installed(conn, result.shop, now)
        installations.mark_synced(conn, result.shop, now)


def _scopes(access_scopes: Any) -> str:
    handles = [s.get("handle") for s in access_scopes or [] if isinstance(s, dict)]
    return ",".join(sorted({str(h) for h in handles if h}))


def _normalised(scopes: str | None) -> str:
    return ",".join(sorted({s.strip() for s in (scopes or "").split(",") if s.strip()}))


def _active(active: bool) -> str:
    return "active" if active else "inactive"
