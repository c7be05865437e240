"""`timedify shops sync`: repair the app's data from the Admin API (S8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from timedify.cli import console

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from timedify.settings import Settings
    from timedify.shopify.contracts import TokenSource
    from timedify.toolkit.shops_sync import SyncReport

TokensFactory = Callable[["Settings", "Engine"], "TokenSource"]

SYNC_HELP = """Read each installed shop's installation from the Admin API (granted scopes,
active subscriptions, whether the app is still installed: an uninstalled app answers 401) and
repair what lost or late webhooks left wrong; every repair is printed and logged. --dry-run
only reports what it would repair.

Example: timedify shops sync --all --dry-run --json

Exit codes: 0 nothing to repair, 1 repairs made (or, with --dry-run, needed), 2 invalid
configuration or an unknown --shop, 3 database behind, 4 database or Shopify unreachable."""


def product_tokens(settings: Settings, engine: Engine) -> TokenSource:
    """The product's token source (S4)."""
    from timedify.shopify.services import ShopifyServices

    return ShopifyServices.build(settings, engine).tokens


def register(group: typer.Typer, *, tokens: TokensFactory = product_tokens) -> None:
    """Add `sync` to the `shops` group; `tokens` builds the token source it calls with."""

    def sync(
        shop: Annotated[
            list[str] | None, typer.Option("--shop", metavar="SHOP", help="This shop (repeatable).")
        ] = None,
        all_shops: Annotated[bool, typer.Option("--all", help="Every installed shop.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Repair nothing.")] = False,
        json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        if bool(shop) == all_shops:
            raise typer.BadParameter("give --shop S (repeatable) or --all", param_hint="--shop")
        report = _run(tokens, shop or None, dry_run)
        _print(report, json)
        raise typer.Exit(_exit_code(report))

    group.command("sync", help=SYNC_HELP)(sync)


def _run(tokens: TokensFactory, shops: list[str] | None, dry_run: bool) -> SyncReport:
    from timedify.cli.common import command_logging, open_engine
    from timedify.shopify.admin import AdminClient
    from timedify.toolkit import shops_sync

    settings = command_logging()
    with open_engine(settings) as engine:
        admin = AdminClient(settings, tokens(settings, engine))
        return shops_sync.sync(engine, settings, admin, shops, dry_run)


def _exit_code(report: SyncReport) -> int:
    if any(s.status == "unknown" for s in report.shops):
        return 2
    if report.unreachable:
        return 4
    return 1 if report.repairs else 0


def _print(report: SyncReport, json: bool) -> None:
    if json:
        console.print_json(report.to_json())
        return
    marks = {"ok": True, "repaired": None, "needs_reauth": None}
    for shop in report.shops:
        detail = f": {shop.error}" if shop.error else ""
        console.status_line(marks.get(shop.status, False), f"{shop.shop}: {shop.status}{detail}")
        for r in shop.repairs:
            console.plain(f"    {r.kind}: {r.before or '-'} -> {r.after or '-'}")
    verb = "to repair" if report.dry_run else "repaired"
    console.plain(
        f"\n{len(report.shops)} shops, {len(report.repairs)} {verb}, "
        f"{len(report.unreachable)} unreachable"
    )
