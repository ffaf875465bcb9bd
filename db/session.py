"""One engine and session factory per database URL, and schema migration on first use.

The default database is an embedded SQLite file in the local data folder
(``GOVEVIDENCE_DATA_DIR``, default ``./data``); ``DATABASE_URL`` selects any other
SQLAlchemy URL, e.g. ``postgresql+psycopg://user@127.0.0.1/govevidence``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def data_dir() -> Path:
    path = Path(os.environ.get("GOVEVIDENCE_DATA_DIR", "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else DATABASE_URL, else SQLite in the data folder."""
    if url:
        return url
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    return f"sqlite:///{(data_dir() / 'govevidence.sqlite3').resolve()}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine(url: str | None = None) -> Engine:
    """The shared engine of a URL (default: DATABASE_URL, else the local SQLite file)."""
    return _engine(database_url(url))


@lru_cache(maxsize=8)
def _engine(resolved: str) -> Engine:
    if resolved.startswith("sqlite"):
        engine = create_engine(resolved, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(resolved, pool_pre_ping=True)
    return engine


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations (``govevidence db upgrade``)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> None:
    """Bring a new or older database to the newest schema; cheap when already there."""
    if current_revision(engine) != head_revision(engine):
        upgrade(engine)
