"""`timedify send-webhook`: one correctly signed test webhook (O11)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from timedify.cli import console
from timedify.errors import TimedifyError, UsageError
from timedify.ingest import webhooks
from timedify.toolkit import urls


def register(app: typer.Typer) -> None:
    app.command(
        "send-webhook",
        help="Send one signed webhook of TOPIC to a running service.\n\n"
        "Example: timedify send-webhook app/uninstalled --url http://127.0.0.1:8000 "
        "--shop demo.myshopify.com\n\n"
        "Exit codes: 0 the service answered 2xx, 1 it answered something else, 2 invalid "
        "configuration, URL or --payload file, 4 it could not be reached.",
    )(send_webhook)


def send_webhook(
    topic: Annotated[
        str,
        typer.Argument(
            help=f"One of: {', '.join(webhooks.TOPICS)}; any other topic goes to /webhooks "
            "(acknowledged, stored as ignored)."
        ),
    ],
    url: Annotated[str, typer.Option(help="Base URL of the service.")] = "http://127.0.0.1:8000",
    shop: Annotated[str, typer.Option(help="Shop domain.")] = "demo.myshopify.com",
    payload: Annotated[
        Path | None, typer.Option(help="JSON file to send instead of the sample payload.")
    ] = None,
    webhook_id: Annotated[str | None, typer.Option(help="Fixed X-Shopify-Webhook-Id.")] = None,
    unified: Annotated[
        bool, typer.Option(help="POST to /webhooks instead of the topic path.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 10.0,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    import httpx  # imported here so other commands start without it

    from timedify.settings import load_settings
    from timedify.testing import signed_webhook

    base = urls.base_url(url)
    secret = load_settings().shopify_api_secret.get_secret_value()
    body: bytes | None = None
    if payload is not None:
        try:
            body = payload.read_bytes()
            orjson.loads(body)
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"cannot use --payload {payload}: {exc}") from None
    hook = signed_webhook(topic, shop, secret, payload=body, webhook_id=webhook_id)
    # Only our topics have a path of their own; another one sent there would meet a 404.
    own_path = topic in webhooks.HANDLED_TOPICS and not unified
    target = base + (hook.path() if own_path else webhooks.UNIFIED_PATH)
    try:
        response = httpx.post(target, content=hook.body, headers=hook.headers, timeout=timeout)
    except httpx.HTTPError as exc:
        error = TimedifyError(f"could not reach {target}: {urls.reason(exc)}")
        error.exit_code = 4
        raise error from None
    ok = response.is_success
    if json:
        console.print_json(
            {
                "url": target,
                "topic": topic,
                "webhook_id": hook.webhook_id,
                "status": response.status_code,
                "body": response.text,
            }
        )
    else:
        unknown = ok and topic not in webhooks.HANDLED_TOPICS
        console.status_line(
            None if unknown else ok, f"{topic} → {target}: {response.status_code} {response.text}"
        )
    if topic not in webhooks.HANDLED_TOPICS:
        console.warning(unhandled_topic(topic))
    if not ok:
        raise typer.Exit(1)


def unhandled_topic(topic: str) -> str:
    """The warning for a topic the app does not handle: stored as ignored, never applied."""
    import difflib

    # The alias path's spelling (`app/subscriptions_update`) is a path, not a topic.
    aliases = {path.removeprefix("/webhooks/"): t for path, t in webhooks.TOPIC_PATHS.items()}
    match = aliases.get(topic) or next(
        iter(difflib.get_close_matches(topic, webhooks.TOPICS, n=1, cutoff=0.8)), None
    )
    text = f"{topic} is not a topic this app handles: the service stores it as ignored"
    return text + (
        f"; did you mean {match}?" if match else f" (it handles {', '.join(webhooks.TOPICS)})"
    )
