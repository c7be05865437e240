"""Fresh migrated databases for a test, copied from the session's templates (see conftest)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from tests.support.pgcluster import PgCluster


def fresh_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "data" / "timedify.sqlite3"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"t_{uuid.uuid4().hex[:16]}", template="timedify_template")
