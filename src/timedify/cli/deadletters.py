"""`timedify dead-letters`: list, show, replay and clean up dead letters (O6, P3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from timedify.cli import console
from timedify.errors import TimedifyError, UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from timedify.processing.dead_letters import ReplayResult
    from timedify.settings import Settings

# SQLAlchemy and the dead-letter module are imported inside the commands: every `timedify`
# start registers this group, and the other commands must start fast (see cli/checks.py).

SHARED = "3 database behind (run `timedify migrate`), 4 database unreachable"


def exit_codes(done: str = "0 success", *, failed: str = "", missing: str = "") -> str:
    """One subcommand's exit-code paragraph: its own codes and those every subcommand shares."""
    codes = [done, failed, "2 invalid configuration or command line", SHARED, missing]
    return "Exit codes: " + ", ".join(c for c in codes if c) + "."


app = typer.Typer(
    name="dead-letters",
    help="Events that exhausted their retries: list, show, replay, clean up.\n\n"
    "Example: timedify dead-letters list --topic customers/redact --json\n\n"
    + exit_codes(failed="1 a replay failed again", missing="5 no such dead letter"),
    no_args_is_help=True,
)
Topic = Annotated[str | None, typer.Option(help="Only this topic, e.g. app/uninstalled.")]
Shop = Annotated[str | None, typer.Option(help="Only this shop domain.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
T = TypeVar("T")


def register(root: typer.Typer) -> None:
    root.add_typer(app)


@contextmanager
def _database() -> Iterator[tuple[Settings, Engine]]:
    from timedify.cli.common import open_engine
    from timedify.settings import load_settings

    settings = load_settings()
    with open_engine(settings) as engine:
        yield settings, engine


@app.command(
    "list",
    help="List unresolved dead letters.\n\nExample: timedify dead-letters list "
    "--shop demo.myshopify.com\n\n" + exit_codes(),
)
def list_command(
    topic: Topic = None,
    shop: Shop = None,
    resolved: Annotated[bool, typer.Option(help="Include resolved ones.")] = False,
    json: Json = False,
) -> None:
    from timedify.processing import dead_letters
    from timedify.processing.dead_letters import Filters

    with _database() as (_settings, engine), engine.connect() as conn:
        items = dead_letters.list_dead_letters(
            conn, Filters(topic=topic, shop=shop, include_resolved=resolved)
        )
    if json:
        console.print_json([item.to_json() for item in items])
        return
    if not items:
        console.status_line(True, "no dead letters")
        return
    console.grid(
        None,
        ["ID", "TOPIC", "SHOP", "ATTEMPTS", "REPLAYS", "LAST FAILURE", "ERROR"],
        [
            [
                str(i.id),
                i.topic,
                i.shop_domain,
                str(i.attempts),
                str(i.replays),
                i.last_failed_at.isoformat(timespec="seconds"),
                i.error[:80] + (f" [{i.resolution}]" if i.resolution else ""),
            ]
            for i in items
        ],
        wrap="ERROR",
    )


@app.command(
    "show",
    help="One dead letter: error, stack, attempts, payload size and keys "
    "(never the payload itself).\n\nExample: timedify dead-letters show 12 --json\n\n"
    + exit_codes("0 shown", missing="5 no such dead letter"),
)
def show_command(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID")], json: Json = False
) -> None:
    from timedify.processing import dead_letters

    with _database() as (_settings, engine), engine.connect() as conn:
        item = dead_letters.get(conn, dead_letter_id)
    doc = item.to_json()
    if json:
        console.print_json(doc)
        return
    for key in (
        "id",
        "webhook_id",
        "topic",
        "shop_domain",
        "attempts",
        "replays",
        "first_failed_at",
        "last_failed_at",
        "resolved_at",
        "resolution",
        "payload_bytes",
        "payload_keys",
        "error",
    ):
        console.out.print(f"{key}: {_shown(doc[key])}", markup=False)
    console.out.print("attempts:", markup=False)
    for attempt in item.attempt_log:
        console.out.print(
            f"  #{attempt['attempt']} {attempt['finished_at']} {attempt['outcome']} "
            f"{attempt['error'] or ''}",
            markup=False,
        )
    console.out.print(f"stack:\n{item.stack or ''}", markup=False)


@app.command(
    "replay",
    help="Run dead letters through their handler again: one ID, or --all "
    "(optionally filtered).\n\nExample: timedify dead-letters replay --all --topic "
    "app/uninstalled --since 24h\n\n"
    + exit_codes(
        "0 all applied (or nothing to replay)",
        failed="1 a replay failed again (it stays a dead letter)",
        missing="5 no such dead letter, or already resolved",
    ),
)
def replay_command(
    dead_letter_id: Annotated[int | None, typer.Argument(metavar="[ID]")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every unresolved dead letter.")] = False,
    topic: Topic = None,
    shop: Shop = None,
    since: Annotated[
        str | None, typer.Option(help="Only those that last failed since: 24h, 7d or ISO time.")
    ] = None,
    json: Json = False,
) -> None:
    from timedify.processing import dead_letters
    from timedify.processing.dead_letters import Filters
    from timedify.processing.retry import RetryPolicy

    if (dead_letter_id is None) == (not all_):
        raise UsageError("give either a dead letter ID or --all (see --help)")
    if dead_letter_id is not None and (topic or shop or since):
        raise UsageError("--topic, --shop and --since go with --all, not with an ID")
    filters = Filters(
        topic=topic, shop=shop, since=_usage(dead_letters.parse_since, since) if since else None
    )
    with _database() as (settings, engine):
        lease = timedelta(seconds=settings.worker_lease_seconds)
        policy = RetryPolicy.from_settings(settings)
        if dead_letter_id is not None:
            results = [dead_letters.replay(engine, dead_letter_id, lease=lease, policy=policy)]
        else:
            results = dead_letters.replay_all(engine, filters, lease=lease, policy=policy)
    _report(results, json)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _shown(value: object) -> str:
    """A field as a person reads it: no Python reprs (`None`, `['a', 'b']`)."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def _usage(parse: Callable[[str], T], text: str) -> T:
    """`parse(text)`, its refusal being a mistake on the command line (exit 2)."""
    try:
        return parse(text)
    except TimedifyError as exc:
        raise UsageError(str(exc)) from None


def _report(results: list[ReplayResult], json: bool) -> None:
    if json:
        console.print_json(
            [
                {"id": r.id, "topic": r.topic, "state": r.state, "ok": r.ok, "error": r.error}
                for r in results
            ]
        )
        return
    if not results:
        console.status_line(True, "nothing to replay")
    for r in results:
        outcome = r.state if r.ok else f"failed again, still a dead letter: {r.error}"
        console.status_line(r.ok, f"dead letter {r.id} ({r.topic}): {outcome}")


@app.command(
    "dismiss",
    help="Resolve a dead letter without applying it (it can never apply, e.g. a malformed "
    "payload), so /health stops warning about it.\n\nExample: timedify dead-letters dismiss 12"
    "\n\n" + exit_codes("0 dismissed", missing="5 no such unresolved dead letter"),
)
def dismiss_command(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID")], json: Json = False
) -> None:
    from timedify.processing import dead_letters

    with _database() as (_settings, engine):
        dead_letters.dismiss(engine, dead_letter_id)
    if json:
        console.print_json({"id": dead_letter_id, "resolution": "dismissed"})
    else:
        console.status_line(True, f"dead letter {dead_letter_id} dismissed")


@app.command(
    "cleanup",
    help="Delete resolved dead letters resolved longer ago than "
    "--older-than.\n\nExample: timedify dead-letters cleanup --older-than 30d\n\n" + exit_codes(),
)
def cleanup_command(
    older_than: Annotated[str, typer.Option(help="Age: 30m, 12h, 7d, 2w.")] = "30d",
    json: Json = False,
) -> None:
    from timedify.processing import dead_letters

    age = _usage(dead_letters.parse_age, older_than)
    with _database() as (_settings, engine):
        deleted = dead_letters.cleanup(engine, age)
    if json:
        console.print_json({"deleted": deleted, "older_than_seconds": age.total_seconds()})
    else:
        console.status_line(True, f"deleted {deleted} resolved dead letter(s)")
