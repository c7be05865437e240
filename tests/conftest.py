"""Shared fixtures: real SQLite files and a real PostgreSQL server, a fresh database per test.

Every test that takes `db_url` runs twice, on SQLite and on PostgreSQL (STYLE §6). Databases
are copied from a migrated template, so each test starts from the schema the migrations build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database
from tests.support.pgcluster import PgCluster
from tests.support.settings import make_settings
from timedify import migrate
from timedify.db import make_engine
from timedify.logs import configure_logging
from timedify.settings import Settings

pytest_plugins = ["tests.support.leakcheck"]


@pytest.fixture(scope="session", autouse=True)
def _json_logs() -> None:
    """In-process services log through the production configuration (JSON, redaction)."""
    configure_logging("INFO", "json")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster().init().start()
    template_url = cluster.create_database("timedify_template")
    engine = make_engine(template_url)
    migrate.upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.destroy()


@pytest.fixture
def own_pg() -> Iterator[tuple[PgCluster, str]]:
    """A PostgreSQL server of the test's own (to stop and start) and its migrated database."""
    cluster = PgCluster().init().start()
    url = cluster.create_database("timedify")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield cluster, url
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each supported kind."""
    return fresh_database(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)
