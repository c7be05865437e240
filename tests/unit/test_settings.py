"""SPEC D4: settings from the environment, validated with one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from timedify.errors import ConfigError
from timedify.settings import load_settings, normalise_database_url

REQUIRED = {
    "shopify_api_key": "key",
    "shopify_api_secret": "a-real-secret",
    "shopify_app_url": "https://app.example.com",
}


def test_missing_required_settings_are_each_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "SHOPIFY_APP_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert sorted(info.value.problems) == [
        "SHOPIFY_API_KEY: missing (required)",
        "SHOPIFY_API_SECRET: missing (required)",
        "SHOPIFY_APP_URL: missing (required)",
    ]


def test_malformed_values_are_reported_by_name() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, **{**REQUIRED, "shopify_app_url": "nope", "port": "x"})
    names = {p.split(":")[0] for p in info.value.problems}
    assert names == {"SHOPIFY_APP_URL", "PORT"}


def test_default_database_is_sqlite_in_tmp_dir(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, tmp_dir=tmp_path, **REQUIRED)
    assert settings.database_url == f"sqlite:///{tmp_path}/timedify.sqlite3"
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url_normalised_for_psycopg(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


def test_placeholder_secret_refused_only_in_production() -> None:
    placeholder = {**REQUIRED, "shopify_api_secret": "changethis"}
    assert load_settings(_env_file=None, environment="development", **placeholder)
    with pytest.raises(ConfigError, match="SHOPIFY_API_SECRET: a placeholder"):
        load_settings(_env_file=None, environment="production", **placeholder)


def test_previous_secret_is_optional_and_accepted_for_verification() -> None:
    settings = load_settings(_env_file=None, shopify_api_secret_previous="old", **REQUIRED)
    assert settings.webhook_secrets() == (b"a-real-secret", b"old")
    assert load_settings(
        _env_file=None, shopify_api_secret_previous="", **REQUIRED
    ).webhook_secrets() == (b"a-real-secret",)


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(_env_file=None, shopify_api_secret_previous="old-one", **REQUIRED)
    assert "a-real-secret" not in repr(settings)
    assert "old-one" not in repr(settings)
