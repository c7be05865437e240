"""The database side of backups and restore drills: online copy, integrity, scratch databases."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import psycopg
from sqlalchemy import Connection, Table, func, select, text


def sqlite_online_copy(source: Path, target: Path) -> None:
    """A consistent snapshot of `source` into `target` while others keep writing (backup API)."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=10)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst, pages=1024)


def sqlite_integrity(path: Path) -> str:
    """`PRAGMA integrity_check` of the file, joined ("ok" when sound); raises sqlite3 errors."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE `name` on the server of `admin_url`. `name` must be ours (hex only)."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    """Drop the scratch database `name`, disconnecting whoever is still on it; errors ignored."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migration_revision(conn: Connection) -> str | None:
    """The revision in `alembic_version`; raises when the table does not exist."""
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
