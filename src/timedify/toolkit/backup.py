"""Consistent online backups and the restore drill that proves them usable (SPEC O10).

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot while
the service keeps writing. PostgreSQL: `pg_dump` in custom format. `verify` restores into a
throwaway database (a copied file for SQLite, a temporary database on the configured server for
PostgreSQL) and checks integrity, the migration revision and that every table can be counted.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess  # pg_dump / pg_restore with argument lists, no shell  # nosec B404
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import Connection
from sqlalchemy.engine import URL, make_url

from timedify import migrate
from timedify.db import make_engine, sqlite_path
from timedify.errors import DatabaseUnavailableError, TimedifyError
from timedify.models import Base
from timedify.settings import Settings
from timedify.store import backups

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(TimedifyError):
    """The backup could not be made, or the file is not a usable backup."""

    exit_code = 1


@dataclass(frozen=True)
class BackupResult:
    path: Path
    kind: str
    size: int


@dataclass
class VerifyResult:
    """What the restore drill found."""

    path: Path
    kind: str
    revision: str
    head: str
    integrity: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def at_head(self) -> bool:
        return self.revision == self.head


def default_path(settings: Settings, now: datetime | None = None) -> Path:
    """`$TMP_DIR/backups/timedify-<UTC time>.sqlite3|.dump`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    suffix = "sqlite3" if settings.is_sqlite else "dump"
    return settings.tmp_dir / "backups" / f"timedify-{stamp}.{suffix}"


def make_backup(settings: Settings, output: Path) -> BackupResult:
    """Write a consistent backup to `output` (via a temporary name, renamed when complete)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        if settings.is_sqlite:
            _sqlite_backup(settings.database_url, partial)
        else:
            _pg_dump(settings.database_url, partial)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(
        output, "sqlite" if settings.is_sqlite else "postgresql", output.stat().st_size
    )


def _sqlite_backup(url: str, target: Path) -> None:
    source = sqlite_path(url)
    if source is None or not source.exists():
        raise BackupError(f"the SQLite database {source} does not exist")
    backups.sqlite_online_copy(source, target)


# How libpq starts its message when it found no server (refused, timed out, unknown host).
UNREACHABLE = ("connection to server", "could not translate host name", "timeout expired")


def _pg_dump(url: str, target: Path) -> None:
    command = [str(find_pg_tool("pg_dump")), "--format=custom", "--file", str(target)]
    _run_pg(command, make_url(url), "pg_dump")


def _run_pg(command: list[str], url: URL, what: str) -> None:
    """Run a PostgreSQL client tool with the connection in PG* variables (never in argv)."""
    try:
        done = subprocess.run(  # our argv, no shell; the password only in PGPASSWORD  # nosec B603
            command, env=_pg_env(url), capture_output=True, text=True, timeout=3600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{what} could not run: {type(exc).__name__}") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        if any(sign in first for sign in UNREACHABLE):
            # libpq's wording for "no connection": exit 4, like every other command.
            reason = first.split("error: ", 1)[-1][:300]
            raise DatabaseUnavailableError(f"cannot reach the database: {reason}")
        raise BackupError(f"{what} failed: {first[:300]}")


def _pg_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[key] = str(value)
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def find_pg_tool(name: str) -> Path:
    """`name` on PATH first, then $PG_BINDIR, then the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)
    if os.environ.get("PG_BINDIR"):
        candidate = Path(os.environ["PG_BINDIR"]) / name
        if candidate.exists():
            return candidate
    installed = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if installed:
        return Path(installed[-1])
    raise BackupError(f"{name} not found: install the PostgreSQL client (postgresql-client)")


def backup_kind(path: Path) -> str:
    """`sqlite` or `postgresql` from the file's first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(
        f"{path} is not a Timedify backup (neither a SQLite database nor a pg_dump archive)"
    )


def verify(path: Path, settings: Settings | None) -> VerifyResult:
    """Restore `path` into a throwaway database and check it; raise BackupError if unusable."""
    kind = backup_kind(path)
    if kind == "sqlite":
        return _verify_sqlite(path)
    if settings is None or settings.is_sqlite:
        raise BackupError(
            "a PostgreSQL backup is verified on a PostgreSQL server: set DATABASE_URL to one"
        )
    return _verify_pg(path, settings.database_url)


def _verify_sqlite(path: Path) -> VerifyResult:
    with tempfile.TemporaryDirectory(prefix="timedify-verify-") as tmp:
        copy = Path(tmp) / "restore.sqlite3"
        shutil.copyfile(path, copy)
        try:
            integrity = backups.sqlite_integrity(copy)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is corrupt: {exc}") from None
        if integrity != "ok":
            raise BackupError(f"{path} is corrupt: integrity_check says {integrity[:300]}")
        engine = make_engine(f"sqlite:///{copy}")
        try:
            with engine.connect() as conn:
                return _inspect(conn, path, "sqlite", integrity)
        finally:
            engine.dispose()


def _verify_pg(path: Path, server_url: str) -> VerifyResult:
    url = make_url(server_url)
    name = f"timedify_verify_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        backups.create_database(admin, name)  # name is ours: hex only
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(
            f"cannot create a scratch database: {type(exc).__name__}"
        ) from None
    try:
        restore = [str(find_pg_tool("pg_restore")), "--no-owner", "--no-privileges",
                   "--exit-on-error", "--dbname", name, str(path)]  # fmt: skip
        _run_pg(restore, url, "pg_restore")
        engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
        try:
            with engine.connect() as conn:
                return _inspect(conn, path, "postgresql", "pg_restore ok")
        finally:
            engine.dispose()
    finally:
        backups.drop_database(admin, name)


def _inspect(conn: Connection, path: Path, kind: str, integrity: str) -> VerifyResult:
    """The migration revision (known to this code) and a row count of every table."""
    try:
        revision = backups.migration_revision(conn)
    except Exception:  # no alembic table: not a Timedify database
        raise BackupError(f"{path} holds no migration revision: not a Timedify database") from None
    if revision not in migrate.known_revisions():
        raise BackupError(f"{path} is at unknown migration revision {revision!r}")
    result = VerifyResult(path, kind, str(revision), migrate.head_revision(), integrity)
    for table in Base.metadata.sorted_tables:
        try:
            result.counts[str(table.name)] = backups.count_rows(conn, table)
        except Exception as exc:  # a missing or unreadable table makes the backup unusable
            raise BackupError(
                f"{path}: table {table.name} unreadable ({type(exc).__name__})"
            ) from None
    return result
