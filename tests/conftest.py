"""Shared fixtures: real PostgreSQL databases and real Dockyard server processes.

Backends: every server-backed test runs on SQLite (embedded default) and PostgreSQL, unless
`DOCKYARD_TEST_BACKENDS` narrows it (e.g. `sqlite`). PostgreSQL comes from
`DOCKYARD_TEST_PG` (default postgresql://postgres@127.0.0.1:5432/postgres); each server gets a
fresh database, dropped afterwards. With `CI=true` a missing PostgreSQL or client tool fails
the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid

import psycopg
import pytest

from tests.object_stores import azurite, moto_s3, swift  # noqa: F401 - session fixtures: real object stores
from tests.server import DockyardServer

PG_ADMIN_URL = os.environ.get("DOCKYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("DOCKYARD_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_PASSWORD = "admin-secret-pw"


def missing(what: str) -> None:
    """Skip for a developer without `what`; fail in CI, where every real component must be present."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(name)
    return path  # type: ignore[return-value]


class PostgresDatabases:
    """Creates throwaway databases on the test PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self) -> str:
        name = "dockyard_test_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> PostgresDatabases:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
    dbs = PostgresDatabases(PG_ADMIN_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def database_url_for(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "postgres":
        return request.getfixturevalue("postgres").create()
    return None


@pytest.fixture
def server(backend: str, request: pytest.FixtureRequest, tmp_path) -> DockyardServer:
    """A fresh Dockyard process (own data dir and database) for one test."""
    srv = DockyardServer(tmp_path / "data", database_url_for(backend, request), ADMIN_PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def shared_server(request: pytest.FixtureRequest, tmp_path_factory) -> DockyardServer:
    """One Dockyard process per module and backend, for tests that do not need a clean slate."""
    backend = request.param
    srv = DockyardServer(tmp_path_factory.mktemp(f"dockyard-{backend}") / "data",
                         database_url_for(backend, request), ADMIN_PASSWORD)
    srv.start()
    yield srv
    srv.stop()
