"""What the toolkit commands share: settings + logging, and a checked database engine.

Imported inside command functions only (it pulls in SQLAlchemy and pydantic).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from timedify import migrate
from timedify.db import engine_for
from timedify.errors import DatabaseUnavailableError, database_reason
from timedify.logs import configure_logging
from timedify.settings import Settings, load_settings


def command_logging(**overrides: Any) -> Settings:
    """Load the settings and send this command's log lines to stderr (and LOG_FILE).

    stdout stays for the command's own output, which scripts read.
    """
    settings = load_settings(**overrides)
    configure_logging(
        settings.log_level, settings.log_format, settings.log_path(), stream=sys.stderr.buffer
    )
    return settings


@contextmanager
def open_engine(settings: Settings, **kwargs: Any) -> Iterator[Engine]:
    """An engine on a database whose schema is current (exit 3 / 4 otherwise), disposed after."""
    engine = engine_for(settings, **kwargs)
    try:
        migrate.require_current(engine)
        yield engine
    except SQLAlchemyError as exc:
        reason = database_reason(exc, engine.url.password)
        raise DatabaseUnavailableError(f"database error: {reason}") from exc
    finally:
        engine.dispose()
