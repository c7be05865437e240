"""`timedify shops`: the shops and their Shopify tokens (S4, S5, S8).

`app` is the group; other modules add their commands to it (`shops sync`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from timedify.cli import console

if TYPE_CHECKING:
    from timedify.store.shops import ShopSummary

# The toolkit, SQLAlchemy and httpx are imported inside the commands (other commands start fast).

EXIT_CODES = (
    "Exit codes: 0 success, 1 a shop could not be migrated (see its line), 2 invalid "
    "configuration (TOKEN_ENCRYPTION_KEY missing, or a stored token written under another "
    "key), 3 database behind (run `timedify migrate`), 4 database or Shopify unreachable."
)
app = typer.Typer(
    name="shops",
    help="Shops and their Shopify tokens: list, migrate tokens, generate and rotate the key."
    "\n\nExample: timedify shops list --json\n\n" + EXIT_CODES,
    no_args_is_help=True,
)
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(root: typer.Typer) -> None:
    from timedify.cli import shops_sync

    shops_sync.register(app)
    root.add_typer(app)


@app.command(
    "list",
    help="Every shop: installed or not, plan and subscription, scopes, token expiry, "
    "needs re-authentication. Never a token.\n\nExample: timedify shops list\n\n" + EXIT_CODES,
)
def list_command(json: Json = False) -> None:
    from timedify.cli.common import command_logging, open_engine
    from timedify.toolkit import shops

    settings = command_logging()
    with open_engine(settings) as engine:
        items = shops.list_shops(engine)
    if json:
        console.print_json([item.to_json() for item in items])
        return
    if not items:
        console.status_line(True, "no shops")
        return
    console.grid(
        None,
        ["SHOP", "INSTALLED", "PLAN", "ACTIVE", "SCOPES", "TOKEN EXPIRES", "TOKEN", "RE-AUTH"],
        [_row(item) for item in items],
    )


def _row(item: ShopSummary) -> list[str]:
    def when(value: object) -> str:
        return value.isoformat(timespec="minutes") if hasattr(value, "isoformat") else "-"

    expiry = "never" if item.has_token and item.token_expires_at is None else "-"
    return [
        item.domain,
        {True: "yes", False: "no", None: "?"}[item.installed],
        item.plan_status or "-",
        {True: "yes", False: "no", None: "?"}[item.subscription_active],
        item.scopes or "-",
        when(item.token_expires_at) if item.token_expires_at else expiry,
        item.token_stored_as or "none",
        "NEEDED since " + when(item.needs_reauth_at) if item.needs_reauth_at else "-",
    ]


@app.command(
    "migrate-tokens",
    help="Exchange every stored non-expiring offline token for an expiring one with "
    "Shopify's migration exchange (required before 2027-01-01). Idempotent: a rerun skips "
    "what is done.\n\nExample: timedify shops migrate-tokens --dry-run\n\n" + EXIT_CODES,
)
def migrate_tokens_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be done.")
    ] = False,
    json: Json = False,
) -> None:
    from timedify.cli.common import command_logging, open_engine
    from timedify.shopify.crypto import TokenCipher
    from timedify.shopify.oauth import OAuthClient
    from timedify.shopify.tokens import TokenManager
    from timedify.toolkit import shops

    settings = command_logging()
    cipher = TokenCipher.from_settings(settings)
    oauth = OAuthClient(settings)
    try:
        with open_engine(settings) as engine:
            manager = TokenManager(engine, settings, oauth, cipher)
            lines = shops.migrate_tokens(engine, manager, dry_run=dry_run)
    finally:
        oauth.close()
    if json:
        console.print_json({"dry_run": dry_run, "shops": [line.to_json() for line in lines]})
    elif not lines:
        console.status_line(True, "no non-expiring tokens: nothing to migrate")
    for line in [] if json else lines:
        ok = None if line.outcome == "not installed" else not line.failed
        detail = f" ({line.detail})" if line.detail else ""
        console.status_line(ok, f"{line.shop}: {line.outcome}{detail}")
    if any(line.outcome == "unavailable" for line in lines):
        raise typer.Exit(4)
    if any(line.failed for line in lines):
        raise typer.Exit(1)


@app.command(
    "generate-key",
    help="Print a new TOKEN_ENCRYPTION_KEY (32 random bytes, URL-safe base64) on stdout.\n\n"
    "Example: echo TOKEN_ENCRYPTION_KEY=$(timedify shops generate-key) >> .env\n\n"
    "Exit codes: 0 printed.",
)
def generate_key_command() -> None:
    from timedify.shopify.crypto import generate_key

    console.plain(generate_key())


@app.command(
    "rotate-key",
    help="Re-encrypt every stored token under TOKEN_ENCRYPTION_KEY, reading old values with "
    "TOKEN_ENCRYPTION_KEY_PREVIOUS; plain-text tokens found are encrypted. Safe to rerun."
    "\n\nExample: TOKEN_ENCRYPTION_KEY_PREVIOUS=<old> TOKEN_ENCRYPTION_KEY=<new> "
    "timedify shops rotate-key\n\n" + EXIT_CODES,
)
def rotate_key_command(json: Json = False) -> None:
    from timedify.cli.common import command_logging, open_engine
    from timedify.shopify.crypto import TokenCipher
    from timedify.toolkit import shops

    settings = command_logging()
    cipher = TokenCipher.from_settings(settings)
    with open_engine(settings) as engine:
        done = shops.rotate_key(engine, cipher)
    if json:
        console.print_json(done.to_json())
        return
    console.status_line(
        True,
        f"{done.reencrypted} sessions re-encrypted under the current key, "
        f"{done.encrypted_plain_text} plain-text sessions encrypted",
    )
