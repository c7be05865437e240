"""store.backups: SQLite's online copy and integrity check, the revision and row counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from timedify import migrate
from timedify.db import make_engine, sqlite_path
from timedify.models import WebhookEvent
from timedify.store import backups


def test_online_copy_is_sound_and_at_the_head_revision(sqlite_url: str, tmp_path: Path) -> None:
    source = sqlite_path(sqlite_url)
    assert source is not None
    target = tmp_path / "copy.sqlite3"
    backups.sqlite_online_copy(source, target)
    assert backups.sqlite_integrity(target) == "ok"
    engine = make_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        assert backups.migration_revision(conn) == migrate.head_revision()
        assert backups.count_rows(conn, WebhookEvent.__table__) == 0
    engine.dispose()


def test_integrity_of_a_file_that_is_not_a_database_raises(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 1000)
    with pytest.raises(sqlite3.DatabaseError):
        backups.sqlite_integrity(junk)
