"""`timedify shops`: the shops that installed the app (S8).

Here only the group and `sync` (cli/shops_sync.py); `list` and the token commands join it.
"""

from __future__ import annotations

import typer

from timedify.cli import shops_sync

app = typer.Typer(
    name="shops",
    help="The shops that installed the app: reconcile them with Shopify.",
    no_args_is_help=True,
)
shops_sync.register(app)


def register(root: typer.Typer) -> None:
    root.add_typer(app)
