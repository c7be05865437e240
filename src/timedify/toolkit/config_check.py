"""`config check`: every setting by its environment variable, ok or not and why (SPEC O9).

Only names and reasons leave this module, never a value: the reasons come from our own words or
from pydantic's messages, which describe the expected shape rather than echo the input (and any
message that happens to contain the raw value is replaced).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError

from timedify.settings import DATABASE_SCHEMES, PLACEHOLDER_SECRETS, Settings

SECRET_FIELDS = frozenset(
    {
        "shopify_api_secret",
        "shopify_api_secret_previous",
        "metrics_token",
        "sentry_dsn",
        "token_encryption_key",
        "token_encryption_key_previous",
    }
)


@dataclass(frozen=True)
class SettingCheck:
    """One setting: `ok` True (fine), None (works, but look at it), False (broken)."""

    name: str
    ok: bool | None
    reason: str
    required: bool
    secret: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": "ok" if self.ok else ("warning" if self.ok is None else "error"),
            "reason": self.reason,
            "required": self.required,
            "secret": self.secret,
        }


def raw_values(env_file: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values as the service would see them: the `.env` file, overridden by the environment."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values |= {k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None}
    values |= {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    return values


def check_config(
    env_file: Path | None = Path(".env"), environ: Mapping[str, str] | None = None
) -> list[SettingCheck]:
    """Check every setting; the order is the order of `Settings`' fields."""
    raw = raw_values(env_file, environ)
    fields = {name: raw.get(name.upper()) for name in Settings.model_fields}
    errors = _validation_errors({k: v for k, v in fields.items() if v is not None}, raw)
    environment = (fields.get("environment") or "development").lower()
    checks = [_check(name, value, errors.get(name), environment) for name, value in fields.items()]
    return _same_token_keys(checks, fields)


def _same_token_keys(
    checks: list[SettingCheck], fields: dict[str, str | None]
) -> list[SettingCheck]:
    """A previous key equal to the current one is harmless, but no rotation: say so."""
    current, previous = (
        fields.get("token_encryption_key"),
        fields.get("token_encryption_key_previous"),
    )
    if not current or current != previous:
        return checks
    reason = "set, but equal to TOKEN_ENCRYPTION_KEY (a rotation needs a new key)"
    return [
        SettingCheck(c.name, None, reason, c.required, c.secret)
        if c.name == "TOKEN_ENCRYPTION_KEY_PREVIOUS" and c.ok
        else c
        for c in checks
    ]


def _validation_errors(values: dict[str, str], raw: Mapping[str, str]) -> dict[str, str]:
    """Field name -> pydantic's reason, with any echo of a raw value removed."""
    try:
        fields: dict[str, Any] = dict(values)
        Settings(_env_file=None, **fields)
    except ValidationError as exc:
        found: dict[str, str] = {}
        for err in exc.errors():
            loc = err.get("loc", ())
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            name = str(loc[0]) if loc else _field_named_in(message)
            if err.get("type") == "missing":
                message = "missing (required)"
            elif not loc:
                message = message.split(": ", 1)[-1]
            found.setdefault(name, _scrub(message, raw.values()))
        return found
    return {}


def _field_named_in(message: str) -> str:
    head = message.split(":", 1)[0].strip().lower()
    return head if head in Settings.model_fields else "_model"


def _scrub(message: str, values: Any) -> str:
    for value in values:
        if isinstance(value, str) and len(value) >= 4 and value in message:
            message = message.replace(value, "[value]")
    return message


def _check(name: str, value: str | None, error: str | None, environment: str) -> SettingCheck:
    field = Settings.model_fields[name]
    required = field.is_required()
    secret = name in SECRET_FIELDS or field.annotation in (SecretStr, SecretStr | None)
    env_name = name.upper()
    if error is not None:
        return SettingCheck(env_name, False, error, required, secret)
    if value is None or value == "":
        if required:
            return SettingCheck(env_name, False, "missing (required)", required, secret)
        if name == "token_encryption_key" and environment == "production":
            return SettingCheck(env_name, False, "missing (required in production)", True, secret)
        if name == "token_encryption_key":
            reason = "not set: Shopify tokens cannot be stored (required in production)"
            return SettingCheck(env_name, None, reason, required, secret)
        return SettingCheck(env_name, True, "not set (optional, default used)", required, secret)
    ok, reason = _shape(name, value, environment)
    return SettingCheck(env_name, ok, reason, required, secret)


def _shape(name: str, value: str, environment: str) -> tuple[bool | None, str]:
    """Our own checks on top of the types: placeholders, URL schemes, DSN shape."""
    if name in SECRET_FIELDS and value.strip().lower() in PLACEHOLDER_SECRETS:
        if environment == "production":
            return False, "placeholder value (refused in production)"
        return None, "placeholder value (fine for development, refused in production)"
    if name in {"shopify_api_secret", "shopify_api_secret_previous"} and len(value) < 16:
        return None, "set, but shorter than a Shopify app secret (16+ characters)"
    if name == "database_url" and not value.startswith(DATABASE_SCHEMES):
        return False, "malformed: must start with sqlite:///, postgres:// or postgresql://"
    if name == "sentry_dsn" and not (value.startswith("https://") and "@" in value):
        return False, "malformed: expected https://<key>@<host>/<project>"
    if name == "shopify_app_url" and environment == "production" and value.startswith("http:"):
        return None, "set, but not https in production"
    return True, "set" if name not in SECRET_FIELDS else "set (secret, value hidden)"


def has_failures(checks: list[SettingCheck]) -> bool:
    """Exit code 1 of `config check`: a required setting missing or any setting malformed."""
    return any(c.ok is False for c in checks)
