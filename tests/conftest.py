"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when enabled) and the sandbox web.

PostgreSQL runs when ``GOVEVIDENCE_TEST_POSTGRES_URL`` names a server URL whose user
may create databases, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``;
each test then gets a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("GOVEVIDENCE_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])
REPO_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """Create an empty database on a backend, yield its URL, drop it afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'evidence.sqlite3'}"
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"govevidence_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from db.session import _engine, get_engine

        get_engine(url).dispose()
        _engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database on each enabled backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str):
    from db.session import get_engine

    return get_engine(database_url)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """The sandbox web on loopback, shared by the tests of a session (slow host: 6 s)."""
    from sandbox import Sandbox

    with Sandbox(port=0, slow_seconds=6.0) as running:
        yield running


@pytest.fixture(scope="session")
def sandbox_registry(sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sandbox") / "registry.yaml"
    sandbox.write_registry(path)
    return path


# The hostile corpus and its one crawl, shared by the modules that read it.
from tests.hostile.crawl import hostile_crawl, hostile_web  # noqa: E402, F401
