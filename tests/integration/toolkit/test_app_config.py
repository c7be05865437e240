"""S9: `config check` holds shopify.app.toml against the service's routes and the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.settings import TOKEN_KEY
from timedify.ingest import webhooks
from timedify.toolkit import app_config
from timedify.toolkit.config_check import SettingCheck, has_failures

REPO_TOML = Path(__file__).resolve().parents[3] / "shopify.app.toml"
APP_URL = "https://timedify.fly.dev"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "SHOPIFY_API_KEY": "dev-api-key",
        "SHOPIFY_API_SECRET": "test-secret-0123456789-abcdefghij",
        "SHOPIFY_APP_URL": APP_URL,
        "SCOPES": "read_products",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "TMP_DIR": str(tmp_path),
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
        **extra,
    }


def check(tmp_path: Path, text: str | None = None, **extra: str) -> dict[str, SettingCheck]:
    path = REPO_TOML
    if text is not None:
        path = tmp_path / "shopify.app.toml"
        path.write_text(text, encoding="utf-8")
    checks = app_config.check_file(path, None, env(tmp_path, **extra))
    return {c.name: c for c in checks}


def edited(old: str, new: str) -> str:
    text = REPO_TOML.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new)


def test_the_repository_configuration_agrees_with_the_service(tmp_path: Path) -> None:
    checks = check(tmp_path, ENVIRONMENT="production")
    assert all(c.ok is True for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert {f"webhooks: {t}" for t in webhooks.TOPICS} <= set(checks)
    assert checks["application_url"].reason == "/app served"


def test_application_url_elsewhere_is_an_error_in_production_a_warning_otherwise(
    tmp_path: Path,
) -> None:
    assert (
        check(tmp_path, SHOPIFY_APP_URL="https://other.example.com")["application_url"].ok is None
    )
    production = check(
        tmp_path, SHOPIFY_APP_URL="https://other.example.com", ENVIRONMENT="production"
    )
    assert production["application_url"].ok is False
    assert has_failures(list(production.values()))


def test_a_uri_the_service_does_not_serve_is_an_error(tmp_path: Path) -> None:
    text = edited(
        'redirect_urls = ["https://timedify.fly.dev/auth/session-token"]',
        'redirect_urls = ["https://timedify.fly.dev/auth/callback"]',
    )
    got = check(tmp_path, text)["auth.redirect_urls[0]"]
    assert got.ok is False
    assert "not a route the service serves" in got.reason


def test_a_topic_on_a_route_that_takes_another_topic_is_an_error(tmp_path: Path) -> None:
    text = edited(
        'uri = "https://timedify.fly.dev/webhooks/app/uninstalled"',
        'uri = "https://timedify.fly.dev/webhooks/shop/redact"',
    )
    got = check(tmp_path, text)["webhooks: app/uninstalled"]
    assert got.ok is False
    assert "does not take app/uninstalled" in got.reason


def test_a_relative_uri_on_the_unified_endpoint_is_fine(tmp_path: Path) -> None:
    text = edited(
        'uri = "https://timedify.fly.dev/webhooks/app/scopes_update"', 'uri = "/webhooks"'
    )
    assert check(tmp_path, text)["webhooks: app/scopes_update"].ok is True


def test_a_missing_subscription_is_an_error(tmp_path: Path) -> None:
    text = edited('compliance_topics = ["shop/redact"]', "compliance_topics = []")
    assert check(tmp_path, text)["webhooks: shop/redact"].reason == "no subscription"


def test_scopes_must_equal_the_setting(tmp_path: Path) -> None:
    assert check(tmp_path, SCOPES="read_products,write_themes")["access_scopes.scopes"].ok is False
    assert check(tmp_path, SCOPES=" read_products ")["access_scopes.scopes"].ok is True


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("embedded = true\n\n[build]", "embedded = false\n\n[build]", "embedded"),
        (
            'redirect_urls = ["https://timedify.fly.dev/auth/session-token"]',
            "redirect_urls = []",
            "auth.redirect_urls",
        ),
        ('application_url = "https://timedify.fly.dev/app"', "", "application_url"),
        ('api_version = "2026-10"', "", "webhooks.api_version"),
    ],
)
def test_each_missing_or_wrong_field_is_an_error(
    tmp_path: Path, old: str, new: str, name: str
) -> None:
    assert check(tmp_path, edited(old, new))[name].ok is False


def test_another_api_version_or_client_id_is_a_warning(tmp_path: Path) -> None:
    checks = check(tmp_path, SHOPIFY_API_VERSION="2026-07", SHOPIFY_API_KEY="another-key")
    assert checks["webhooks.api_version"].ok is None
    assert checks["client_id"].ok is None


def test_an_unreadable_or_missing_file(tmp_path: Path) -> None:
    assert check(tmp_path, "application_url = [")["file"].ok is False
    missing = app_config.check_file(tmp_path / "nope.toml", None, env(tmp_path))
    assert [c.ok for c in missing] == [None]


def test_invalid_settings_skip_the_route_checks_only(tmp_path: Path) -> None:
    checks = check(tmp_path, PORT="eighty")
    assert checks["application_url"].ok is None
    assert "not checked" in checks["application_url"].reason
    assert checks["access_scopes.scopes"].ok is True


def test_routes_are_asked_of_the_service(tmp_path: Path) -> None:
    from timedify.settings import load_settings

    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env(tmp_path).items()})
    with app_config.service_routes(settings) as serves:
        assert serves("/webhooks/customers/redact")
        assert serves("/webhooks/app/subscriptions_update")  # the alias
        assert serves("/health/webhooks")
        assert serves("/metrics")
        assert not serves("/webhooks/orders/create")
        assert not serves("/admin")
