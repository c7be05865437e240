"""The GraphQL Admin API client (SPEC S6).

`AdminClient.query` sends one named operation for a shop and returns its `data`. Each request is
bounded (connect and read timeouts); 429s (after their `Retry-After`, which may be fractional),
5xx answers and network errors are retried a bounded number of times with exponential backoff
and jitter, then `ShopifyUnavailable`; cost-based throttling (`throttle.Throttle`) waits before a
query the shop's bucket would not afford and after a `THROTTLED` answer; a 401 asks the token
source once for a new token, then raises `NeedsReauthentication`. Every HTTP request is one log
line (shop, operation, status, cost, duration; `error_class` on failures; never the token) and
counted in the metrics.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from timedify.ingest import webhooks
from timedify.logs import get_logger
from timedify.metrics import Metrics
from timedify.settings import Settings
from timedify.shopify.contracts import (
    NeedsReauthentication,
    ShopifyError,
    ShopifyUnavailable,
    TokenSource,
)
from timedify.shopify.throttle import Cost, Throttle

TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 - a header name  # nosec B105
DEPRECATION_HEADER = "x-shopify-api-deprecated-reason"
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# A wait longer than this (a Retry-After, an empty bucket) is not waited out: the caller (a
# page, the worker) is better told that Shopify is unavailable.
MAX_WAIT_SECONDS = 60.0


class AdminUnauthorized(NeedsReauthentication):
    """The Admin API answered 401 and a renewed token did not help (or could not be had): what
    Shopify answers for an app the shop uninstalled (S8)."""


class ShopifyQueryError(ShopifyError):
    """The Admin API refused the query itself (GraphQL errors, a 4xx other than 401 and 429)."""

    error_class = "shopify_query"


@dataclass(frozen=True)
class _Answer:
    """What one HTTP request came to: `outcome` ok, unauthorized, refused or one of _RETRYABLE."""

    outcome: str
    status: int | None
    data: dict[str, Any] | None = None
    wait: float | None = None  # how long Shopify asked us to wait (Retry-After, throttle)
    detail: str = ""


class AdminClient:
    """GraphQL Admin API calls on behalf of shops; one per process, safe across threads."""

    def __init__(
        self,
        settings: Settings,
        tokens: TokenSource,
        http: httpx.Client | None = None,
        *,
        metrics: Metrics | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(
                settings.shopify_admin_read_timeout_seconds,
                connect=settings.shopify_admin_connect_timeout_seconds,
            )
        )
        self._metrics = metrics
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
        self.throttle = Throttle(clock)
        self._deprecations: set[str] = set()
        self._lock = threading.Lock()
        self._log = get_logger("timedify.shopify.admin")

    def url(self, shop: str) -> str:
        origin = self._settings.shopify_api_origin.rstrip("/").replace("{shop}", shop)
        return f"{origin}/admin/api/{self._settings.shopify_api_version}/graphql.json"

    def query(
        self,
        shop: str,
        operation: str,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        cost: float | None = None,
    ) -> dict[str, Any]:
        """Run the operation named `operation` in `document` for `shop`; its `data`.

        `cost` is the points the query is expected to ask for (default: what it asked last
        time). Raises NeedsReauthentication, ShopNotInstalled (from the token source),
        ShopifyUnavailable after the bounded retries, ShopifyQueryError for a refused query.
        """
        if not webhooks.valid_shop_domain(shop):
            raise ShopifyQueryError(f"not a myshopify domain: {shop!r}")
        body: dict[str, Any] = {"query": document, "operationName": operation}
        if variables:
            body["variables"] = variables
        token = self._tokens.access_token(shop)
        renewed, failures = False, 0
        while True:
            self._await_budget(shop, self.throttle.cost_of(operation, cost))
            answer = self._send(shop, operation, body, token)
            if answer.outcome == "ok":
                return answer.data or {}
            if answer.outcome == "unauthorized":
                token = self._renew(shop, operation, renewed)
                renewed = True
                continue
            if answer.outcome == "refused":
                raise ShopifyQueryError(f"{operation} on {shop}: {answer.detail}")
            failures += 1
            delay = self._delay(answer, failures)
            if failures > self._settings.shopify_admin_max_retries or delay > MAX_WAIT_SECONDS:
                self._give_up(shop, operation, answer, failures)
            self._sleep(delay)

    def _renew(self, shop: str, operation: str, renewed: bool) -> str:
        """A new token after a 401: once per call; then the shop needs re-authentication."""
        if not renewed:
            try:
                return self._tokens.after_unauthorized(shop)
            except NeedsReauthentication as exc:
                reason = str(exc)
        else:
            reason = "the Admin API refused a renewed token"
        self._log.error(
            "admin_api_needs_reauth", shop=shop, operation=operation, error_class="shopify_auth"
        )
        raise AdminUnauthorized(f"{shop}: {reason}")

    def _await_budget(self, shop: str, cost: float) -> None:
        # A few rounds at most: another thread may spend the points restored meanwhile, and
        # Shopify's own THROTTLED answer remains the backstop.
        for _ in range(3):
            wait = self.throttle.reserve(shop, cost)
            if wait == 0:
                return
            self._log.info(
                "admin_api_throttle_wait", shop=shop, cost=cost, wait_ms=round(wait * 1000)
            )
            self._sleep(min(wait, MAX_WAIT_SECONDS))

    def _send(self, shop: str, operation: str, body: dict[str, Any], token: str) -> _Answer:
        started = time.perf_counter()
        try:
            response = self._http.post(self.url(shop), json=body, headers={TOKEN_HEADER: token})
        except httpx.TransportError as exc:
            answer, cost = _Answer("connection_error", None, detail=type(exc).__name__), None
        else:
            self._deprecated(operation, response)
            answer, cost = self._classify(shop, operation, response)
        self._record(shop, operation, answer, cost, time.perf_counter() - started)
        return answer

    def _classify(
        self, shop: str, operation: str, response: httpx.Response
    ) -> tuple[_Answer, Cost | None]:
        status = response.status_code
        if status == 401:
            return _Answer("unauthorized", status), None
        if status == 429 or status >= 500:
            outcome = "http_429" if status == 429 else "http_5xx"
            return _Answer(outcome, status, wait=retry_after(response)), None
        if status != 200:
            return _Answer("refused", status, detail=f"HTTP {status}"), None
        try:
            doc = response.json()
        except ValueError:
            return _Answer("http_5xx", status, detail="answer is not JSON"), None
        cost = self.throttle.observe(shop, operation, doc.get("extensions"))
        codes = _error_codes(doc.get("errors"))
        if "THROTTLED" in codes:
            wait = self.throttle.wait_for(shop, cost.requested or self.throttle.cost_of(operation))
            return _Answer("throttled", status, wait=wait), cost
        if codes or not isinstance(doc.get("data"), dict):
            return _Answer("refused", status, detail=f"GraphQL errors {sorted(codes)}"), cost
        return _Answer("ok", status, data=doc["data"]), cost

    def _delay(self, answer: _Answer, failures: int) -> float:
        if answer.wait is not None:
            # Never earlier than asked; a little later, so that callers told the same do not
            # all come back at once.
            return answer.wait + self._rng.uniform(0, 0.1)
        backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (failures - 1))
        return backoff * self._rng.uniform(0.5, 1.0)

    def _give_up(self, shop: str, operation: str, answer: _Answer, failures: int) -> NoReturn:
        error_class = _error_class(answer.outcome)
        self._log.error(
            "admin_api_gave_up",
            shop=shop,
            operation=operation,
            status=answer.status,
            attempts=failures,
            error_class=error_class,
        )
        raise ShopifyUnavailable(
            f"{operation} on {shop}: {answer.outcome} after {failures} attempts"
        )

    def _deprecated(self, operation: str, response: httpx.Response) -> None:
        reason = response.headers.get(DEPRECATION_HEADER)
        if reason is None:
            return
        with self._lock:
            if operation in self._deprecations:
                return
            self._deprecations.add(operation)
        self._log.warning(
            "admin_api_deprecated",
            operation=operation,
            reason=reason[:300],
            api_version=self._settings.shopify_api_version,
        )

    def _record(
        self, shop: str, operation: str, answer: _Answer, cost: Cost | None, seconds: float
    ) -> None:
        fields: dict[str, Any] = {
            "shop": shop,
            "operation": operation,
            "status": answer.status,
            "outcome": answer.outcome,
            "duration_ms": round(seconds * 1000, 1),
        }
        if cost is not None:
            fields.update(cost=cost.actual, requested_cost=cost.requested, available=cost.available)
        if answer.outcome == "ok":
            self._log.info("admin_api_call", **fields)
        else:
            self._log.warning(
                "admin_api_call",
                error_class=_error_class(answer.outcome),
                detail=answer.detail,
                **fields,
            )
        if self._metrics is not None:
            self._metrics.admin_calls.labels(operation, answer.outcome).inc()
            self._metrics.admin_latency.labels(operation).observe(seconds)


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (Shopify sends fractions such as `0.5`), None if absent or an
    HTTP date (then our own backoff applies)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _error_class(outcome: str) -> str:
    """What the log line's `error_class` says (alerting-check counts http_429, http_5xx and
    shopify_auth): a THROTTLED answer is a rate limit like a 429."""
    return {
        "http_429": "http_429",
        "throttled": "http_429",
        "http_5xx": "http_5xx",
        "unauthorized": "shopify_auth",
        "connection_error": "shopify_unavailable",
    }.get(outcome, "shopify_query")


def _error_codes(errors: Any) -> set[str]:
    """The `extensions.code` of each GraphQL error ("UNKNOWN" for an error without one)."""
    if not errors:
        return set()
    if not isinstance(errors, list):
        return {"UNKNOWN"}
    codes = set()
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        codes.add(str(code) if code else "UNKNOWN")
    return codes
