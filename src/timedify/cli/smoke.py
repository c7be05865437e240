"""`timedify smoke URL`: the post-deploy smoke and synthetic webhook test (O7)."""

from __future__ import annotations

from typing import Annotated

import typer

from timedify.cli import console

HELP = """Post-deploy smoke test over HTTP: /health, one signed synthetic webhook per topic for
the reserved shop timedify-synthetic-smoke.myshopify.com (each must get 200), one forged webhook
(must get 401), then waits until every synthetic event is processed by the worker, and removes
the synthetic data (a signed POST /smoke/cleanup). Synthetic events never count in statistics.
Needs SHOPIFY_API_SECRET to be the deployed app's secret (in the environment or .env where
you run it): with another one every signed webhook gets 401.

Example: timedify smoke https://timedify.fly.dev --process-timeout 60

Exit codes: 0 every step passed, 1 a step failed (or the service is unreachable), 2 invalid
configuration or URL."""


def register(app: typer.Typer) -> None:
    app.command("smoke", help=HELP)(smoke)


def smoke(
    url: Annotated[str, typer.Argument(help="Base URL of the deployed service.")],
    process_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the worker to process the events.")
    ] = 30.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait per request.")] = 10.0,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    import httpx

    from timedify.settings import load_settings
    from timedify.toolkit import smoke as smoke_test
    from timedify.toolkit import urls

    base = urls.base_url(url, "URL")
    secret = load_settings().shopify_api_secret.get_secret_value()
    with httpx.Client(timeout=timeout) as client:
        result = smoke_test.run(client, base, secret, process_timeout)
    if json:
        console.print_json(
            {"url": base, "ok": result.ok, "steps": [s.to_json() for s in result.steps]}
        )
    else:
        for step in result.steps:
            console.status_line(step.ok, f"{step.name}: {step.text}")
        console.plain("\nsmoke test " + ("passed" if result.ok else "FAILED"))
    if not result.ok:
        raise typer.Exit(1)
