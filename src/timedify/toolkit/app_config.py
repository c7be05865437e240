"""`config check` on `shopify.app.toml` (SPEC S9): what Shopify is told agrees with the service.

Every URI in it (application_url, auth.redirect_urls, each webhook subscription's uri) must be
a route the service serves (asked of the app `create_app` builds, not of a second list), every
topic the app handles must be subscribed on a route that takes it, the scopes must equal
SCOPES, and the URLs must be on SHOPIFY_APP_URL. A URL elsewhere is an error in production and
a warning otherwise (development runs behind a tunnel the Shopify CLI writes into the file).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import ValidationError

from timedify.ingest import webhooks
from timedify.settings import Settings
from timedify.toolkit.config_check import SettingCheck, raw_values

Serves = Callable[[str], bool]


def check_app_config(
    path: Path, raw: Mapping[str, str], serves: Serves | None
) -> list[SettingCheck]:
    """The checks of `path` against the raw settings; `serves` None when the settings are too
    broken to build the service (the route checks are then skipped)."""
    if not path.is_file():
        return [_check("file", None, f"{path} not found: the app configuration is not checked")]
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return [_check("file", False, f"{path} is not valid TOML: {exc}")]
    context = _Context(raw, serves)
    return [
        _check("file", True, f"{path} read"),
        _client_id(doc, raw),
        context.url("application_url", doc.get("application_url"), page=True),
        _check(
            "embedded",
            doc.get("embedded") is True,
            "true"
            if doc.get("embedded")
            else "must be true: the app is embedded in the Shopify admin",
        ),
        _api_version(doc, raw),
        *context.webhooks(doc.get("webhooks") or {}),
        _scopes(doc, raw),
        *context.redirects((doc.get("auth") or {}).get("redirect_urls")),
    ]


def check_file(
    path: Path, env_file: Path | None, environ: Mapping[str, str] | None = None
) -> list[SettingCheck]:
    """`check_app_config` with the settings `config check` reads (the .env file, the
    environment) and the routes of the service they build."""
    raw = raw_values(env_file, environ)
    values: dict[str, Any] = {
        name: raw[name.upper()] for name in Settings.model_fields if name.upper() in raw
    }
    try:
        settings = Settings(_env_file=None, **values)
    except ValidationError:
        return check_app_config(path, raw, None)
    with service_routes(settings) as serves:
        return check_app_config(path, raw, serves)


@contextmanager
def service_routes(settings: Settings) -> Iterator[Serves]:
    """Whether the service built from `settings` serves a path; nothing is started."""
    from timedify.web.app import create_app, serves

    app = create_app(settings)
    try:
        yield lambda p: serves(app, p)
    finally:
        app.services.health.close()
        app.services.engine.dispose()
        app.services.read_engine.dispose()


class _Context:
    """What the URL checks share: SHOPIFY_APP_URL, the environment and the routes."""

    def __init__(self, raw: Mapping[str, str], serves: Serves | None) -> None:
        self.base = urlsplit(raw.get("SHOPIFY_APP_URL", ""))
        self.production = raw.get("ENVIRONMENT", "").lower() == "production"
        self.serves = serves
        self.application_url = ""

    def url(
        self, name: str, value: Any, *, page: bool = False, topic: str | None = None
    ) -> SettingCheck:
        if not isinstance(value, str) or not value:
            return _check(name, False, "missing")
        if page:
            self.application_url = value
        url = urlsplit(urljoin(self.application_url or value, value))
        on_app_url = self._on_app_url(url)
        route = (url.path[len(self.base.path.rstrip("/")) :] if on_app_url else url.path) or "/"
        if topic is not None and not _takes(route, topic):
            return _check(name, False, f"{route} does not take {topic}")
        if self.serves is not None and not self.serves(route):
            return _check(name, False, f"{route} is not a route the service serves")
        if not on_app_url:
            where = f"{url.scheme}://{url.netloc}"
            return _check(
                name, False if self.production else None, f"{where} is not SHOPIFY_APP_URL"
            )
        if self.serves is None:
            return _check(name, None, f"{route}: not checked (the settings above are invalid)")
        return _check(name, True, f"{route} served")

    def webhooks(self, section: Mapping[str, Any]) -> list[SettingCheck]:
        found: dict[str, SettingCheck] = {}
        for sub in section.get("subscriptions") or []:
            topics = [*(sub.get("topics") or []), *(sub.get("compliance_topics") or [])]
            for topic in topics:
                name = f"webhooks: {topic}"
                if topic not in webhooks.HANDLED_TOPICS:
                    found[topic] = _check(name, None, "not a topic the app handles (ignored)")
                else:
                    found[topic] = self.url(name, sub.get("uri"), topic=topic)
        missing = [
            _check(f"webhooks: {t}", False, "no subscription")
            for t in webhooks.TOPICS
            if t not in found
        ]
        return [*found.values(), *missing]

    def redirects(self, urls: Any) -> list[SettingCheck]:
        if not isinstance(urls, list) or not urls:
            return [_check("auth.redirect_urls", False, "missing (Shopify requires one)")]
        return [self.url(f"auth.redirect_urls[{i}]", u) for i, u in enumerate(urls)]

    def _on_app_url(self, url: Any) -> bool:
        base = self.base
        same = (url.scheme, url.hostname, url.port) == (base.scheme, base.hostname, base.port)
        return same and url.path.startswith(base.path.rstrip("/"))


def _takes(route: str, topic: str) -> bool:
    return route == webhooks.UNIFIED_PATH or webhooks.TOPIC_PATHS.get(route) == topic


def _scopes(doc: Mapping[str, Any], raw: Mapping[str, str]) -> SettingCheck:
    given = (doc.get("access_scopes") or {}).get("scopes")
    if not isinstance(given, str):
        return _check("access_scopes.scopes", False, "missing")
    if _scope_set(given) != _scope_set(raw.get("SCOPES", "")):
        return _check("access_scopes.scopes", False, "differ from SCOPES")
    return _check("access_scopes.scopes", True, "equal SCOPES")


def _api_version(doc: Mapping[str, Any], raw: Mapping[str, str]) -> SettingCheck:
    given = (doc.get("webhooks") or {}).get("api_version")
    ours = raw.get("SHOPIFY_API_VERSION") or str(
        Settings.model_fields["shopify_api_version"].default
    )
    if not given:
        return _check("webhooks.api_version", False, "missing")
    if given != ours:
        return _check("webhooks.api_version", None, "differs from SHOPIFY_API_VERSION")
    return _check("webhooks.api_version", True, "equals SHOPIFY_API_VERSION")


def _client_id(doc: Mapping[str, Any], raw: Mapping[str, str]) -> SettingCheck:
    if doc.get("client_id") != raw.get("SHOPIFY_API_KEY"):
        return _check("client_id", None, "differs from SHOPIFY_API_KEY (another app's file?)")
    return _check("client_id", True, "equals SHOPIFY_API_KEY")


def _scope_set(scopes: str) -> frozenset[str]:
    return frozenset(s.strip() for s in scopes.split(",") if s.strip())


def _check(name: str, ok: bool | None, reason: str) -> SettingCheck:
    return SettingCheck(name, ok, reason, required=False, secret=False)
