"""Test settings, the same values in-process (`make_settings`) and for subprocesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from timedify.settings import Settings, load_settings

SECRET = "test-secret-0123456789-abcdefghij"
PREVIOUS_SECRET = "previous-secret-9876543210-zyxwvu"
SHOP = "demo-shop.myshopify.com"
# Fernet keys for TOKEN_ENCRYPTION_KEY (S5): the tests' current key and a previous one.
TOKEN_KEY = "L1Hpy_XP5pPNiL9CzSUrvw3aItqnNMswOefJBUfZz5I="
PREVIOUS_TOKEN_KEY = "Uynj-vN5VxQljHrUMstsFzAxPJXL3aRCeKN72YOnh8M="


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "environment": "test",
        "shopify_api_key": "test-key",
        "shopify_api_secret": SECRET,
        "shopify_app_url": "https://app.example.com",
        "database_url": db_url,
        "tmp_dir": tmp_path,
        "worker_in_process": False,
        "token_encryption_key": TOKEN_KEY,
    }
    values.update(overrides)
    return load_settings(**values)


def settings_env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The same settings as environment variables, for subprocesses."""
    env = {
        "ENVIRONMENT": "test",
        "SHOPIFY_API_KEY": "test-key",
        "SHOPIFY_API_SECRET": SECRET,
        "SHOPIFY_APP_URL": "https://app.example.com",
        "DATABASE_URL": db_url,
        "TMP_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
    }
    env.update(extra)
    return env
