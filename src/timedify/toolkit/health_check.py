"""HTTP probes of a running service, for `health-check` and `smoke` (SPEC O2, O7).

Each probe is one request with a measured response time. The webhook routes are probed with an
unsigned request: a mounted, verifying route answers `401`; a `200` means it accepts forged
webhooks, which is the worst possible answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from timedify.ingest import webhooks
from timedify.toolkit import urls


@dataclass(frozen=True)
class Probe:
    """One check: `ok` True (pass), None (warning), False (failure)."""

    name: str
    ok: bool | None
    text: str
    ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        status = "ok" if self.ok else ("warning" if self.ok is None else "critical")
        return {"name": self.name, "status": status, "text": self.text, "ms": self.ms}


@dataclass(frozen=True)
class Timing:
    """Response time thresholds in milliseconds."""

    warn_ms: float = 500
    crit_ms: float = 2000

    def judge(self, ms: float) -> bool | None:
        if ms > self.crit_ms:
            return False
        return None if ms > self.warn_ms else True


def webhook_paths() -> list[tuple[str, str]]:
    """(path, topic) for the six topic routes, the alias and the unified endpoint."""
    paths = sorted(webhooks.TOPIC_PATHS.items())
    return [*paths, (webhooks.UNIFIED_PATH, "app/uninstalled")]


def _timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    return response, round((time.perf_counter() - started) * 1000, 1)


def _unreachable(name: str, url: str, exc: httpx.HTTPError) -> Probe:
    return Probe(name, False, f"{url} unreachable: {urls.reason(exc)}")


def unreachable(client: httpx.Client, base: str) -> Probe | None:
    """One failed probe when the service cannot be reached at all (then the other probes would
    each fail alike), None when `/health/live` answers anything."""
    try:
        client.get(base + "/health/live")
    except httpx.HTTPError as exc:
        return Probe("service", False, f"{base} unreachable: {urls.reason(exc)}")
    return None


def health_probes(client: httpx.Client, base: str, timing: Timing) -> list[Probe]:
    """`/health` (status and checks), `/health/live` and `/health/webhooks`."""
    probes = [_health(client, base, timing)]
    for path in ("/health/live", "/health/webhooks"):
        try:
            response, ms = _timed(client, "GET", base + path)
        except httpx.HTTPError as exc:
            probes.append(_unreachable(path, base + path, exc))
            continue
        if response.status_code != 200:
            probes.append(Probe(path, False, f"answered {response.status_code}", ms))
        else:
            probes.append(Probe(path, timing.judge(ms), f"200 in {ms:g} ms", ms))
    return probes


def _health(client: httpx.Client, base: str, timing: Timing) -> Probe:
    try:
        response, ms = _timed(client, "GET", base + "/health")
        doc = response.json()
    except httpx.HTTPError as exc:
        return _unreachable("/health", base + "/health", exc)
    except ValueError:
        return Probe("/health", False, "the answer is not a health document")
    status = str(doc.get("status", "fail")) if isinstance(doc, dict) else "fail"
    problems = _failing_checks(doc)
    detail = f"{response.status_code} {status} in {ms:g} ms" + (
        f" ({', '.join(problems)})" if problems else ""
    )
    if status == "pass":
        return Probe("/health", timing.judge(ms), detail, ms)
    return Probe("/health", None if status == "warn" else False, detail, ms)


def _failing_checks(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return []
    found = []
    for name, items in (doc.get("checks") or {}).items():
        for item in items:
            if item.get("status") != "pass":
                where = f"{name}[{item['componentId']}]" if item.get("componentId") else name
                found.append(f"{where}: {item.get('status')} {item.get('output', '')}".strip())
    return found


def route_probes(client: httpx.Client, base: str, timing: Timing) -> list[Probe]:
    """Every webhook route must refuse an unsigned request with 401 (W1)."""
    probes = []
    for path, topic in webhook_paths():
        headers = {
            "content-type": "application/json",
            webhooks.TOPIC_HEADER: topic,
            webhooks.SHOP_HEADER: webhooks.SYNTHETIC_SHOP_DOMAIN,
            webhooks.WEBHOOK_ID_HEADER: "timedify-probe-unsigned",
        }
        try:
            response, ms = _timed(client, "POST", base + path, content=b"{}", headers=headers)
        except httpx.HTTPError as exc:
            probes.append(_unreachable(path, base + path, exc))
            continue
        probes.append(_judge_route(path, response.status_code, ms, timing))
    return probes


def _judge_route(path: str, status: int, ms: float, timing: Timing) -> Probe:
    if status == 401:
        return Probe(path, timing.judge(ms), f"unsigned request refused with 401 in {ms:g} ms", ms)
    if 200 <= status < 300:
        return Probe(path, False, f"ACCEPTED an unsigned request ({status}): not verifying", ms)
    if status in (404, 405):
        return Probe(path, False, f"answered {status}: the route is not mounted", ms)
    return Probe(path, False, f"answered {status} instead of 401", ms)


def exit_code(probes: list[Probe]) -> int:
    """0 all pass, 1 a warning, 2 a failure (O2)."""
    if any(p.ok is False for p in probes):
        return 2
    return 1 if any(p.ok is None for p in probes) else 0
