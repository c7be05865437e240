"""SQLite connection settings for a bulk delete that shares the file with the service.

For the length of a `retention-cleanup` run, on its own connection only:
- `synchronous = NORMAL`: a commit writes the WAL without waiting for fsync, so a batch holds the
  write lock for its work and not for a disk flush. Still atomic and consistent; the next
  service commit (`synchronous = FULL`) syncs these frames with its own. A deletion lost to a
  power cut is only redone by the next run.
- a bigger page cache: consecutive batches touch the same index pages.
- no automatic checkpoint after a commit (it would run inside our timed batch); instead a
  PASSIVE checkpoint at most once a second, timed as work so the pause covers it too. Checkpoints
  a second apart copy each page once however many batches changed it.
Everything is put back as it was when the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

CACHE_KIB = 64 * 1024
CHECKPOINT_INTERVAL = 1.0
_SETTINGS = {"synchronous": "1", "cache_size": str(-CACHE_KIB), "wal_autocheckpoint": "0"}


@contextmanager
def bulk_session(conn: Connection) -> Iterator[Callable[[], float]]:
    """Tune `conn` for bulk deletes; yields `checkpoint()`, returning the seconds it worked."""
    if conn.dialect.name != "sqlite":
        yield lambda: 0.0
        return
    raw = conn.connection.dbapi_connection
    assert raw is not None
    before = {name: _pragma(raw, name) for name in _SETTINGS}
    for name, value in _SETTINGS.items():
        raw.execute(f"PRAGMA {name} = {value}")
    last = time.monotonic()

    def checkpoint() -> float:
        nonlocal last
        started = time.monotonic()
        if started - last < CHECKPOINT_INTERVAL:
            return 0.0
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        last = time.monotonic()
        return last - started

    try:
        yield checkpoint
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        for name, value in before.items():
            raw.execute(f"PRAGMA {name} = {value}")


def _pragma(raw: Any, name: str) -> str:
    return str(raw.execute(f"PRAGMA {name}").fetchone()[0])
