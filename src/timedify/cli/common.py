"""What the toolkit commands share: settings + logging, and a checked database engine.

Imported inside command functions only (it pulls in SQLAlchemy and pydantic).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from timedify import migrate
from timedify.db import engine_for
from timedify.errors import DatabaseUnavailableError, database_reason
from timedify.logs import configure_logging
from timedify.settings import Settings, load_settings


def command_logging(**overrides: Any) -> Settings:
    """Load the settings and send this command's log lines to stderr (and LOG_FILE).

    stdout stays for the command's own output, which scripts read. On a terminal, JSON lines
    would only repeat that output in a harder form: they are rendered for people there, or,
    when LOG_FILE is set, written to the file alone (which stays JSON for `alerting-check`).
    """
    settings = load_settings(**overrides)
    stream: IO[bytes] = sys.stderr.buffer
    fmt = settings.log_format
    if fmt == "json" and sys.stderr.isatty():
        if settings.log_path() is None:
            fmt = "console"
        else:
            stream = open(os.devnull, "wb")  # noqa: SIM115 - for the life of the command
    configure_logging(settings.log_level, fmt, settings.log_path(), stream=stream)
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
