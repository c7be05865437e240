"""All configuration, from environment variables or a `.env` file (SPEC D4).

One class, validated once at start; `load_settings` turns pydantic's errors into one line per
problem naming the environment variable, so an operator knows exactly what to set.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from timedify.errors import ConfigError

# Values that ship in .env.example or tutorials: fine on a laptop, refused in production.
DATABASE_SCHEMES = ("sqlite:///", "postgres://", "postgresql://", "postgresql+psycopg://")
PLACEHOLDER_SECRETS = frozenset(
    {"changethis", "change-me", "changeme", "secret", "dev-secret", "timedify-dev-secret"}
)


class Settings(BaseSettings):
    """Every setting of the service and the toolkit. Field name = environment variable name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Literal["development", "test", "production"] = "development"
    shopify_api_key: str = Field(min_length=1)
    shopify_api_secret: SecretStr
    shopify_api_secret_previous: SecretStr | None = None
    shopify_app_url: AnyHttpUrl
    scopes: str = ""

    tmp_dir: Path = Path("tmp")
    database_url: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    log_file: str | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    header_read_timeout_seconds: float = Field(default=10.0, gt=0)
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    ingest_timeout_seconds: float = Field(default=2.0, gt=0, le=4.5)
    retry_after_seconds: int = Field(default=5, ge=1)
    ingest_max_queue: int = Field(default=10_000, ge=1)
    ingest_writers: int = Field(default=2, ge=1, le=16)
    db_busy_timeout_ms: int = Field(default=2000, ge=0)
    db_connect_timeout_seconds: int = Field(default=2, ge=1)

    worker_in_process: bool = True
    worker_batch_size: int = Field(default=200, ge=1)
    worker_lease_seconds: int = Field(default=60, ge=5)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)

    health_timeout_seconds: float = Field(default=0.8, gt=0, lt=1.0)
    health_backlog_warn_seconds: int = Field(default=300, ge=1)
    health_heartbeat_stale_seconds: int = Field(default=60, ge=1)
    metrics_token: SecretStr | None = None
    sentry_dsn: SecretStr | None = None

    # Shopify app home (S1): the app's handle, for managed pricing's plan page URL
    shopify_app_handle: str = Field(default="timedify", pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")

    # Shopify tokens (S3-S5): the key that encrypts stored tokens, the previous key (read only,
    # during a rotation), where Shopify is reached (`{shop}` is replaced; tests use a fake) and
    # the Admin API version.
    token_encryption_key: SecretStr | None = None
    token_encryption_key_previous: SecretStr | None = None
    shopify_api_origin: str = "https://{shop}"
    shopify_api_version: str = Field(default="2026-10", pattern=r"^(\d{4}-(01|04|07|10)|unstable)$")

    @field_validator("token_encryption_key", "token_encryption_key_previous", mode="before")
    @classmethod
    def _fernet_key(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if not _is_fernet_key(raw):
            raise ValueError(
                "not a Fernet key (32 random bytes, URL-safe base64; "
                "`timedify shops generate-key` prints one)"
            )
        return value

    @field_validator("shopify_api_origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("https://", "http://")) or "/" in value.split("://", 1)[1]:
            raise ValueError("must be a scheme and host, e.g. https://{shop}")
        return value

    # Shopify Admin API, billing and reconciliation (S6-S8)
    shopify_admin_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    shopify_admin_read_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    shopify_admin_max_retries: int = Field(default=4, ge=0, le=10)
    # None: test charges count outside production only (development stores make test charges).
    billing_allow_test: bool | None = None
    shops_sync_interval_hours: float = Field(default=24.0, ge=0)

    # Operator console (C1): served at /console only when CONSOLE_PASSWORD is set.
    console_password: SecretStr | None = None
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    console_login_attempts: int = Field(default=5, ge=1)
    console_login_window_seconds: int = Field(default=300, ge=1)

    @field_validator("console_password", mode="before")
    @classmethod
    def _console_password(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or value == "":
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if info.data.get("environment") == "production" and (
            text in PLACEHOLDER_SECRETS or len(text) < 12
        ):
            raise ValueError("a placeholder or a password under 12 characters in production")
        return value

    @field_validator("shopify_api_secret_previous", "metrics_token", "sentry_dsn", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("billing_allow_test", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("scopes")
    @classmethod
    def _normalise_scopes(cls, value: str) -> str:
        return ",".join(s.strip() for s in value.split(",") if s.strip())

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value  # `debug` is fine

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        # Checked here, not by SQLAlchemy at the first connection: every command then stops
        # with one line and exit 2 instead of a traceback (`migrate` is Fly's release command).
        if value and not value.startswith(DATABASE_SCHEMES):
            raise ValueError("malformed: must start with sqlite:///, postgres:// or postgresql://")
        return value

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.tmp_dir / 'timedify.sqlite3').as_posix()}"
        self.database_url = normalise_database_url(self.database_url)
        if self.environment == "production":
            for name in ("shopify_api_secret", "shopify_api_secret_previous"):
                secret = getattr(self, name)
                if secret is not None and secret.get_secret_value() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"{name.upper()}: a placeholder is not allowed in production")
        return self

    # Shopify tokens (S5); after the secrets' check, which reports first.
    @model_validator(mode="after")
    def _token_key_in_production(self) -> Settings:
        if self.environment == "production" and self.token_encryption_key is None:
            raise ValueError("TOKEN_ENCRYPTION_KEY: required when ENVIRONMENT=production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def log_path(self) -> Path | None:
        """Where LOG_FILE lines go (inside TMP_DIR), or None."""
        return self.tmp_dir / self.log_file if self.log_file else None

    @property
    def billing_allows_test_charges(self) -> bool:
        """Whether a test subscription makes a shop active (S7): BILLING_ALLOW_TEST, else
        everywhere but production."""
        if self.billing_allow_test is not None:
            return self.billing_allow_test
        return self.environment != "production"

    def webhook_secrets(self) -> tuple[bytes, ...]:
        """The secrets a webhook signature may be made with: current first, then previous (W1)."""
        secrets = [self.shopify_api_secret.get_secret_value().encode()]
        if self.shopify_api_secret_previous is not None:
            secrets.append(self.shopify_api_secret_previous.get_secret_value().encode())
        return tuple(secrets)


def _is_fernet_key(raw: str) -> bool:
    """Fernet's key format, checked here so that settings need not import the cipher."""
    try:
        return len(raw) == 44 and len(base64.urlsafe_b64decode(raw.encode("ascii"))) == 32
    except (ValueError, binascii.Error):
        return False


def normalise_database_url(url: str) -> str:
    """Map the URL forms platforms hand out to the driver we install (psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(**overrides: Any) -> Settings:
    """Build the settings or raise `ConfigError` with one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError([_describe(err) for err in exc.errors()]) from None


def _describe(err: Any) -> str:
    name = ".".join(str(p) for p in err.get("loc", ())).upper()
    if err.get("type") == "missing":
        return f"{name}: missing (required)"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{name}: {message}" if name else message
