"""The webhook endpoint: verify, validate, commit, acknowledge (SPEC W1-W5).

A pure ASGI callable on the hot path: no framework routing, no ORM, the signature checked over the
raw bytes before anything is parsed, and a `200` only once the group committer reports the row
durable. Every refusal has a status code, a reason in the body, a metric and one log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from timedify.errors import DatabaseUnavailableError
from timedify.ingest import webhooks
from timedify.ingest.committer import GroupCommitter
from timedify.ingest.deadlines import Deadlines
from timedify.ingest.iteration import PerIteration
from timedify.logs import HotLogger, get_logger, identifier, pseudonym
from timedify.metrics import Metrics
from timedify.models import EventState
from timedify.settings import Settings

log = get_logger("timedify.ingest.endpoint")
accepted_log = HotLogger("timedify.ingest.endpoint")
_JSON = (b"content-type", b"application/json")
_MAX_ID_LENGTH = 255
_ACCEPTED = b'{"status":"accepted"}'
# A tuple: nothing can append to the headers every acknowledgement shares.
_ACCEPTED_HEADERS = (_JSON, (b"content-length", str(len(_ACCEPTED)).encode()))


class Rejection(Exception):
    """A request refused with `status`; `reason` is a stable, machine-readable word."""

    def __init__(self, status: int, reason: str, detail: str, **log_fields: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.log_fields = log_fields


class _Disconnected(Exception):
    pass


class WebhookEndpoint:
    """ASGI endpoint for the per-topic paths and the unified `POST /webhooks`."""

    def __init__(self, settings: Settings, committer: GroupCommitter, metrics: Metrics) -> None:
        self._verify = webhooks.SignatureVerifier(settings.webhook_secrets())
        self._limit = settings.max_body_bytes
        self._body_deadlines = Deadlines(settings.body_read_timeout_seconds)
        self._commit_deadlines = Deadlines(settings.ingest_timeout_seconds)
        self._retry_after = str(settings.retry_after_seconds).encode()
        self._committer = committer
        self._metrics = metrics
        # The webhooks of one iteration are handed to the committer together and share their
        # `received_at`, so the committer converts one timestamp per hand-over, not two per row.
        self._clock = PerIteration(lambda: datetime.now(UTC))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _raw_headers(scope["headers"])
        try:
            if scope["method"] != "POST":
                raise Rejection(405, "method_not_allowed", "only POST is accepted")
            body = await self._read_body(_text(headers[_LENGTH]), receive)
            row = self._row(scope["path"], headers, body)
            new = await self._store(row)
        except Rejection as rejection:
            await self._refuse(send, rejection, headers, started)
            return
        except _Disconnected:
            log.info("webhook_client_disconnected", path=scope["path"])
            return
        await send({"type": "http.response.start", "status": 200, "headers": _ACCEPTED_HEADERS})
        await send({"type": "http.response.body", "body": _ACCEPTED})
        elapsed = time.perf_counter() - started
        topic, shop = row["topic"], row["shop_domain"]
        # Smoke-test deliveries are acknowledged like any other but kept out of the real counts.
        outcome = "synthetic" if row["synthetic"] else "new" if new else "duplicate"
        # Topics the app does not handle are acknowledged too; their label is bounded.
        self._metrics.acked.inc(self._metrics.topic_label(topic), outcome)
        self._metrics.ack_latency.observe(elapsed)
        accepted_log.info(
            "webhook_accepted" if new else "webhook_duplicate",
            topic=topic,
            shop=shop,
            webhook_id=identifier(row["webhook_id"]),
            status=200,
            # Hundredths of a millisecond; round() to two digits goes through a decimal
            # string conversion, three times the cost of this.
            duration_ms=round(elapsed * 100_000) / 100,
        )

    def _row(self, path: str, headers: list[bytes | None], body: bytes) -> dict[str, Any]:
        """The row to store for a verified, well-formed webhook (W1, W2), or a `Rejection`."""
        if not self._verify(body, headers[_HMAC]):
            reason = "missing_signature" if _text(headers[_HMAC]) is None else "invalid_signature"
            raise Rejection(401, reason, "the HMAC signature is missing or does not match")
        header_topic = _text(headers[_TOPIC])
        # Bounded: one of our topics or "other" (the header of a signed request is still text).
        self._metrics.received.inc(self._metrics.topic_label(header_topic))
        topic = _required_topic(header_topic, path)
        webhook_id = _required_id(
            _text(headers[_WEBHOOK_ID]), "webhook_id", webhooks.WEBHOOK_ID_HEADER
        )
        # Optional headers are stored too: a value the database column refuses would fail the
        # whole group-commit batch, so they are checked here like the required ones.
        event_id = _optional(
            _text(headers[_EVENT_ID]), "event_id", webhooks.EVENT_ID_HEADER, _MAX_ID_LENGTH
        )
        api_version = _optional(
            _text(headers[_API_VERSION]), "api_version", webhooks.API_VERSION_HEADER, 32
        )
        shop = _shop_domain(topic, _text(headers[_SHOP]), _json_object(body))
        now = self._clock.get()
        handled = topic in webhooks.HANDLED_TOPICS
        return {
            # Kept by the rule of log lines: what is not identifier-shaped is a stand-in.
            "webhook_id": pseudonym(webhook_id),
            "topic": topic,
            "shop_domain": shop,
            "event_id": pseudonym(event_id),
            "triggered_at": webhooks.parse_timestamp(_text(headers[_TRIGGERED_AT])),
            "api_version": pseudonym(api_version),
            "received_at": now,
            "payload": body,
            "state": EventState.RECEIVED if handled else EventState.IGNORED,
            "attempts": 0,
            "next_attempt_at": now,
            "processed_at": None if handled else now,
            "synthetic": webhooks.is_synthetic(shop),
        }

    async def _read_body(self, declared: str | None, receive: Receive) -> bytes:
        if declared is not None and (not declared.isdigit() or int(declared) > self._limit):
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        task = asyncio.current_task()
        assert task is not None  # narrows the type: ASGI calls run in a task  # nosec B101
        wait = self._body_deadlines.start(task)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._limit:
                    raise self._too_large()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if not wait.expired:
                raise
            task.uncancel()
            raise Rejection(408, "body_timeout", "the body was not received in time") from None
        finally:
            wait.discard(task)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self) -> Rejection:
        return Rejection(413, "body_too_large", f"the body exceeds {self._limit} bytes")

    async def _store(self, row: dict[str, Any]) -> bool:
        try:
            future = self._committer.submit(row)
            wait = self._commit_deadlines.start(future)
            try:
                return await future
            finally:
                wait.discard(future)
        except (DatabaseUnavailableError, TimeoutError) as exc:
            raise Rejection(
                503,
                "database_unavailable",
                "the webhook could not be stored; retry later",
                topic=row["topic"],
                shop=row["shop_domain"],
                webhook_id=identifier(row["webhook_id"]),
                error_class="db",
                error_type=type(exc).__name__,
            ) from None

    async def _refuse(
        self, send: Send, rejection: Rejection, headers: list[bytes | None], started: float
    ) -> None:
        extra: list[tuple[bytes, bytes]] = []
        if rejection.status == 503:
            extra.append((b"retry-after", self._retry_after))
        elif rejection.status == 405:
            extra.append((b"allow", b"POST"))
        body = orjson.dumps({"error": rejection.reason, "detail": rejection.detail})
        await _respond(send, rejection.status, body, extra)
        topic = _text(headers[_TOPIC])
        self._metrics.rejected.labels(self._metrics.topic_label(topic), rejection.reason).inc()
        fields = {
            "topic": identifier(topic),
            "webhook_id": identifier(_text(headers[_WEBHOOK_ID])),
            **rejection.log_fields,
        }
        level = log.error if rejection.status >= 500 else log.warning
        level(
            "webhook_rejected",
            reason=rejection.reason,
            status=rejection.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            **{k: _truncate(v) for k, v in fields.items() if v is not None},
        )


# The headers the endpoint reads, each in its slot; the others (user agent, tracing, ...) are
# never looked at, and a value is decoded only when it is used. Each slot is found by its
# header's name, so the order of this tuple is free.
_READ = (
    webhooks.HMAC_HEADER,
    webhooks.TOPIC_HEADER,
    webhooks.WEBHOOK_ID_HEADER,
    webhooks.EVENT_ID_HEADER,
    webhooks.SHOP_HEADER,
    webhooks.TRIGGERED_AT_HEADER,
    webhooks.API_VERSION_HEADER,
    "content-length",
)
_SLOTS = {name.encode(): i for i, name in enumerate(_READ)}
_HMAC = _SLOTS[webhooks.HMAC_HEADER.encode()]
_TOPIC = _SLOTS[webhooks.TOPIC_HEADER.encode()]
_WEBHOOK_ID = _SLOTS[webhooks.WEBHOOK_ID_HEADER.encode()]
_EVENT_ID = _SLOTS[webhooks.EVENT_ID_HEADER.encode()]
_SHOP = _SLOTS[webhooks.SHOP_HEADER.encode()]
_TRIGGERED_AT = _SLOTS[webhooks.TRIGGERED_AT_HEADER.encode()]
_API_VERSION = _SLOTS[webhooks.API_VERSION_HEADER.encode()]
_LENGTH = _SLOTS[b"content-length"]


def _raw_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[bytes | None]:
    """The values of the headers that matter, by slot (W2: names are case-insensitive)."""
    values: list[bytes | None] = [None] * len(_SLOTS)
    for name, value in raw:
        slot = _SLOTS.get(name)
        if slot is None:
            if name.islower():  # ASGI servers lower-case names: the usual unwanted header
                continue
            slot = _SLOTS.get(name.lower())
            if slot is None:
                continue
        values[slot] = value
    return values


def _text(value: bytes | None) -> str | None:
    """A header's value as text, without surrounding blanks; a blank value is missing (W2)."""
    if value is None:
        return None
    return value.decode("latin-1").strip() or None


def _required_topic(header_topic: str | None, path: str) -> str:
    if header_topic is None:
        raise Rejection(400, "missing_topic", "the X-Shopify-Topic header is required")
    topic = header_topic.lower()
    if not webhooks.valid_topic(topic):
        raise Rejection(400, "invalid_topic", "X-Shopify-Topic is not a topic name")
    path_topic = webhooks.TOPIC_PATHS.get(path.rstrip("/"))
    if path_topic is not None and topic != path_topic:
        # W2: the header names what Shopify sent; the path is only the app's configuration.
        log.warning("webhook_topic_mismatch", topic=topic, path_topic=path_topic)
    return topic


def _required_id(value: str | None, name: str, header: str) -> str:
    if value is None:
        raise Rejection(400, f"missing_{name}", f"the {header} header is required")
    if len(value) > _MAX_ID_LENGTH or not value.isprintable():
        raise Rejection(400, f"invalid_{name}", f"the {header} header is malformed")
    return value


def _optional(value: str | None, name: str, header: str, limit: int) -> str | None:
    if value is not None and (len(value) > limit or not value.isprintable()):
        raise Rejection(400, f"invalid_{name}", f"the {header} header is malformed")
    return value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Rejection(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Rejection(400, "invalid_json", "the body is not a JSON object")
    return payload


def _shop_domain(topic: str, header: str | None, payload: dict[str, Any]) -> str:
    shop = header
    if shop is None and topic in webhooks.COMPLIANCE_TOPICS:
        # Shopify has delivered compliance webhooks without the header; the payload names it.
        candidate = payload.get("shop_domain")
        shop = candidate if isinstance(candidate, str) else None
    if shop is None:
        raise Rejection(400, "missing_shop_domain", "the shop domain is required")
    shop = shop.strip().lower()
    if not webhooks.valid_shop_domain(shop):
        raise Rejection(400, "invalid_shop_domain", "the shop domain is not *.myshopify.com")
    return shop


def _truncate(value: Any) -> Any:
    return value[:120] if isinstance(value, str) else value


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
