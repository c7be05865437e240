"""Shared fixtures: real SQLite files and a real PostgreSQL server, a fresh database per test.

Every test that takes `db_url` runs twice, on SQLite and on PostgreSQL (STYLE §6). Databases
are copied from a migrated template, so each test starts from the schema the migrations build.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pgcluster import PgCluster
from timedify import migrate
from timedify.db import make_engine
from timedify.logs import configure_logging
from timedify.settings import Settings, load_settings

pytest_plugins = ["tests.support.leakcheck"]

SECRET = "test-secret-0123456789"
PREVIOUS_SECRET = "previous-secret-9876543210"
SHOP = "demo-shop.myshopify.com"


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


def fresh_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "data" / "timedify.sqlite3"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"t_{uuid.uuid4().hex[:16]}", template="timedify_template")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each supported kind."""
    return fresh_database(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "environment": "test",
        "shopify_api_key": "test-key",
        "shopify_api_secret": SECRET,
        "shopify_app_url": "https://app.example.com",
        "database_url": db_url,
        "tmp_dir": tmp_path,
        "worker_in_process": False,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


def settings_env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The same settings as environment variables, for subprocesses."""
    env = {
        "ENVIRONMENT": "test",
        "SHOPIFY_API_KEY": "test-key",
        "SHOPIFY_API_SECRET": SECRET,
        "SHOPIFY_APP_URL": "https://app.example.com",
        "DATABASE_URL": db_url,
        "TMP_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
    }
    env.update(extra)
    return env
