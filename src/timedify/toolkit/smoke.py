"""The post-deploy smoke test, run against a deployed URL over HTTP only (SPEC O7).

Steps: `/health`; one signed synthetic webhook per topic for the reserved synthetic shop, each
must be acknowledged with `200`; one forged webhook (wrong secret) that must be refused with
`401`; then polling `GET /smoke/events` until every accepted event is `processed` (the worker
really ran); finally `POST /smoke/cleanup` (signed) removes the synthetic data, also when an
earlier step failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import orjson

from timedify.ingest import webhooks
from timedify.models import EventState
from timedify.testing import signed_webhook
from timedify.toolkit import urls
from timedify.toolkit.health_check import Probe, unreachable
from timedify.web.smoke import SIGNATURE_HEADER

FINAL_FAILURES = frozenset({EventState.DEAD, EventState.IGNORED})
ALL_REFUSED = (
    "every signed webhook was refused with 401: the SHOPIFY_API_SECRET here is not the deployed "
    "app's. Run smoke with the app's client secret (the one set with `fly secrets set`)"
)


@dataclass
class SmokeRun:
    """The steps taken and the synthetic webhook ids accepted."""

    steps: list[Probe] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # topics whose signed webhook got 401

    @property
    def ok(self) -> bool:
        return all(step.ok is not False for step in self.steps)


def run(client: httpx.Client, base: str, secret: str, process_timeout: float) -> SmokeRun:
    """Every step against `base`; cleanup always runs once something was accepted."""
    result = SmokeRun()
    down = unreachable(client, base)
    if down is not None:
        result.steps.append(down)  # one line, not one per step
        return result
    result.steps.append(_health(client, base))
    try:
        for topic in webhooks.TOPICS:
            result.steps.append(_send(client, base, topic, secret, result))
        if len(result.refused) == len(webhooks.TOPICS):
            result.steps[-len(webhooks.TOPICS) :] = [Probe("signature", False, ALL_REFUSED)]
            return result
        result.steps.append(_forged(client, base, secret))
        if result.accepted:
            result.steps.append(_processed(client, base, result.accepted, process_timeout))
    finally:
        if result.accepted:
            result.steps.append(_cleanup(client, base, secret, result.accepted))
    return result


def _health(client: httpx.Client, base: str) -> Probe:
    try:
        response = client.get(base + "/health")
        status = str(response.json().get("status"))
    except httpx.HTTPError as exc:
        return Probe("health", False, f"/health unreachable: {urls.reason(exc)}")
    except (ValueError, AttributeError):
        return Probe("health", False, "/health did not answer a health document")
    ok = status in ("pass", "warn")
    return Probe("health", ok if status == "pass" or not ok else None, f"/health {status}")


def _send(client: httpx.Client, base: str, topic: str, secret: str, result: SmokeRun) -> Probe:
    hook = signed_webhook(topic, webhooks.SYNTHETIC_SHOP_DOMAIN, secret)
    try:
        response = client.post(base + hook.path(), content=hook.body, headers=hook.headers)
    except httpx.HTTPError as exc:
        return Probe(f"webhook {topic}", False, f"unreachable: {urls.reason(exc)}")
    if response.status_code == 401:
        result.refused.append(topic)
    if response.status_code != 200:
        return Probe(f"webhook {topic}", False, f"answered {response.status_code}, expected 200")
    result.accepted.append(hook.webhook_id)
    return Probe(f"webhook {topic}", True, "signed synthetic webhook acknowledged (200)")


def _forged(client: httpx.Client, base: str, secret: str) -> Probe:
    hook = signed_webhook("app/uninstalled", webhooks.SYNTHETIC_SHOP_DOMAIN, secret + "-forged")
    try:
        response = client.post(base + hook.path(), content=hook.body, headers=hook.headers)
    except httpx.HTTPError as exc:
        return Probe("forged webhook", False, f"unreachable: {urls.reason(exc)}")
    if response.status_code == 401:
        return Probe("forged webhook", True, "refused with 401")
    return Probe(
        "forged webhook", False, f"answered {response.status_code}: forged webhooks get through"
    )


def _processed(client: httpx.Client, base: str, ids: list[str], timeout: float) -> Probe:
    """Poll until every accepted event is processed, one fails for good, or time runs out."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while True:
        try:
            response = client.get(base + "/smoke/events", params=[("id", i) for i in ids])
            states = dict(response.json()["events"]) if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            states = {}
        done = [i for i in ids if states.get(i) == EventState.PROCESSED]
        failed = [i for i in ids if states.get(i) in FINAL_FAILURES]
        if len(done) == len(ids):
            return Probe("processing", True, f"all {len(ids)} synthetic events processed")
        if failed or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    if failed:
        return Probe("processing", False, f"{len(failed)} failed for good ({_tally(ids, states)})")
    return Probe(
        "processing",
        False,
        f"{len(done)}/{len(ids)} processed after {timeout:g} s ({_tally(ids, states)})",
    )


def _tally(ids: list[str], states: dict[str, str]) -> str:
    """`received: 2, processed: 4` with `not found` for ids the service does not know."""
    seen = [states.get(i, "not found") for i in ids]
    return ", ".join(f"{state}: {seen.count(state)}" for state in sorted(set(seen)))


def _cleanup(client: httpx.Client, base: str, secret: str, ids: list[str]) -> Probe:
    body = orjson.dumps({"webhook_ids": ids})
    signature = webhooks.sign(body, secret.encode())
    headers = {"content-type": "application/json", SIGNATURE_HEADER: signature}
    try:
        response = client.post(base + "/smoke/cleanup", content=body, headers=headers)
        deleted = int(response.json()["deleted"]) if response.status_code == 200 else -1
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return Probe("cleanup", False, f"synthetic data not removed ({type(exc).__name__})")
    if deleted < 0:
        return Probe("cleanup", False, f"cleanup answered {response.status_code}")
    if deleted != len(ids):
        return Probe("cleanup", False, f"{deleted} of {len(ids)} synthetic events removed")
    return Probe("cleanup", True, f"{deleted} synthetic events removed")
