"""Schema migrations: apply them (the release command) and tell where a database stands (O1)."""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from timedify.errors import (
    DatabaseAheadError,
    DatabaseBehindError,
    DatabaseUnavailableError,
    database_reason,
)


@dataclass(frozen=True)
class MigrationStatus:
    """Where the database stands against the code's migrations."""

    current: str | None
    head: str
    pending: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "timedify:migrations")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"  # packaging  # nosec B101
    return head


def known_revisions() -> set[str]:
    """Every revision this code ships (a database at any of them can be migrated to head)."""
    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def status(engine: Engine) -> MigrationStatus:
    """Current revision, head and the revisions still to apply."""
    script = ScriptDirectory.from_config(_config())
    head = head_revision()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        reason = database_reason(exc, engine.url.password)
        raise DatabaseUnavailableError(f"cannot reach the database: {reason}") from exc
    try:
        pending = tuple(rev.revision for rev in script.iterate_revisions(head, current or "base"))
    except (CommandError, RevisionError):
        raise DatabaseAheadError(
            f"the database is at revision {current}, which this release does not know: a newer "
            "release migrated it. Deploy that release (or restore a backup taken before it)."
        ) from None
    return MigrationStatus(current=current, head=head, pending=tuple(reversed(pending)))


def upgrade(engine: Engine, target: str = "head") -> None:
    """Apply every pending migration in one go."""
    config = _config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, target)
    except SQLAlchemyError as exc:
        reason = database_reason(exc, engine.url.password)
        raise DatabaseUnavailableError(f"migration failed: {reason}") from exc


def require_current(engine: Engine) -> None:
    """Refuse to run on a database whose schema is behind the code."""
    state = status(engine)
    if not state.up_to_date:
        raise DatabaseBehindError(
            f"the database is at revision {state.current or 'none'}, the code needs {state.head}: "
            "run `timedify migrate` first"
        )
