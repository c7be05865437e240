"""Error reporting to Sentry (or any Sentry-compatible service) when `SENTRY_DSN` is set (H5).

Off without a DSN. With one, every event passes `scrub` before it leaves the process: request
bodies, cookies, query strings and all but a few harmless headers are dropped, local variables
and source lines are never collected, fields named like secrets or personal data are redacted,
and e-mail addresses, phone numbers and tokens inside messages are masked.
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk

from timedify import __version__
from timedify.logs import FORBIDDEN_FIELDS, scrub_text
from timedify.settings import Settings

SAFE_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "x-shopify-topic", "x-shopify-api-version"}
)
REDACTED = "[redacted]"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
# E.164 as Shopify sends phones; a bare digit run could be a date or an id.
_PHONE = re.compile(r"\+\d[\d ()-]{7,}\d")
_SECRET_KEY = re.compile(r"secret|token|password|passwd|hmac|signature|authorization|dsn|cookie")


def init_sentry(settings: Settings, **options: Any) -> bool:
    """Start the SDK when a DSN is configured; return whether it was started."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        release=f"timedify@{__version__}",
        include_local_variables=False,
        include_source_context=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
        before_send=scrub,
        before_breadcrumb=_scrub_breadcrumb,
        **options,
    )
    return True


def scrub(event: Any, _hint: Any = None) -> Any:
    """Remove everything that could hold a secret or personal data from an event."""
    event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "query_string", "env"):
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() in SAFE_HEADERS}
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
    for key in ("extra", "contexts", "tags"):
        if key in event:
            event[key] = _scrub_value(event[key])
    for exception in (event.get("exception") or {}).get("values", []):
        if isinstance(exception.get("value"), str):
            exception["value"] = _mask(exception["value"])
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            for key in ("vars", "pre_context", "context_line", "post_context"):
                frame.pop(key, None)
    if isinstance(event.get("logentry"), dict):
        event["logentry"] = _scrub_value(event["logentry"])
    if isinstance(event.get("message"), str):
        event["message"] = _mask(event["message"])
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):
        breadcrumbs["values"] = [_scrub_breadcrumb(b) for b in breadcrumbs.get("values", [])]
    return event


def _scrub_breadcrumb(crumb: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    crumb = dict(crumb)
    if isinstance(crumb.get("message"), str):
        crumb["message"] = _mask(crumb["message"])
    if "data" in crumb:
        crumb["data"] = _scrub_value(crumb["data"])
    return crumb


def _scrub_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _sensitive(str(k)) else _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    if isinstance(value, str):
        return _mask(value)
    return value


def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in FORBIDDEN_FIELDS or _SECRET_KEY.search(lowered) is not None


def _mask(text: str) -> str:
    return _PHONE.sub(REDACTED, _EMAIL.sub(REDACTED, scrub_text(text)))
