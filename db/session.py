"""One engine and session factory per database URL, and schema migration under a lock.

The default database is an embedded SQLite file in the local data folder
(``GOVEVIDENCE_DATA_DIR``, default ``./data``); ``DATABASE_URL`` selects any other
SQLAlchemy URL, e.g. ``postgresql+psycopg://user@127.0.0.1/govevidence``.

Only ``scrapy crawl`` and ``govevidence db upgrade`` migrate (``ensure_schema`` /
``upgrade``), each holding a database-wide lock for the whole upgrade so that two
crawls starting on a fresh database do not both create the tables. Commands that
only read call ``require_schema``, which refuses an empty or outdated database.

Problems a user can cause (a bad URL, a database that cannot be reached, a data folder
that cannot be written) raise ``DatabaseError`` / ``StorageError`` with a one-line
message in which any password is hidden.
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock held while migrating (any constant bigint).
MIGRATION_LOCK_KEY = zlib.crc32(b"govevidence.migrations")


class DatabaseError(RuntimeError):
    """The database cannot be used as configured; the message is one line, password hidden."""


class SchemaNotCurrent(DatabaseError):
    """The database is empty, older or newer than this version of the code."""


class StorageError(OSError):
    """The data folder cannot be created or written; the message is one line."""


def safe_url(url: object) -> str:
    """A database URL fit to print: the password, if any, replaced by ``***``."""
    if isinstance(url, Engine):
        url = url.url
    if not isinstance(url, str):
        return url.render_as_string(hide_password=True)  # type: ignore[attr-defined]
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^/@:]*):[^@/]*@", r"\1:***@", url)


def _first_line(text_: str) -> str:
    return next((line.strip() for line in text_.splitlines() if line.strip()), "")


def error_reason(exc: BaseException) -> str:
    """The driver's own words for a database error, without SQLAlchemy's decorations."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, DBAPIError) and orig is not None:
        return _first_line(str(orig)) or type(orig).__name__
    return _first_line(str(exc)) or type(exc).__name__


def data_dir() -> Path:
    path = Path(os.environ.get("GOVEVIDENCE_DATA_DIR", "data"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"数据目录 {path} 无法创建（GOVEVIDENCE_DATA_DIR）：{exc.strerror or exc}") from None
    return path


def writable_folder(path: Path, what: str = "数据目录") -> Path:
    """Create the folder if need be and prove that files can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise StorageError(f"{what} {path} 无法写入：{exc.strerror or exc}") from None
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
    resolved = database_url(url)
    try:
        return _engine(resolved)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"数据库地址无效（DATABASE_URL={safe_url(resolved)}）：{error_reason(exc)}") from None
    except ImportError as exc:  # the URL names a driver that is not installed
        raise DatabaseError(
            f"数据库驱动未安装（DATABASE_URL={safe_url(resolved)}）：{error_reason(exc)}；"
            "PostgreSQL 请用 postgresql+psycopg://") from None


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


@contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """Turn a failure to reach or use the database into a one-line ``DatabaseError``."""
    try:
        yield
    except DatabaseError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseError(f"无法使用数据库 {safe_url(engine)}：{error_reason(exc)}") from None


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The options are a ConfigParser: a literal "%" (URL-encoded passwords) must be doubled.
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def current_revision(engine: Engine) -> str | None:
    with database_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _lock_for_migration(connection) -> None:
    """Take the database-wide migration lock inside the connection's transaction.

    PostgreSQL: an advisory lock, released at commit or rollback. SQLite: the write lock
    (``BEGIN IMMEDIATE``), which a second writer waits for (busy_timeout).
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _migrate(engine: Engine, step: Any, revision: str) -> None:
    """Run an Alembic command holding the migration lock throughout.

    On SQLite, foreign keys are off while migrating (SQLite's own procedure for changing a
    table): a table copied into a new one (Alembic's batch mode) is dropped, and with
    foreign keys on that drop deletes the rows of every table referencing it with ON DELETE
    CASCADE (review decisions, for ``findings``). ``PRAGMA foreign_key_check`` must then find
    nothing before the migration commits.
    """
    config = alembic_config(engine)
    with database_errors(engine), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # takes effect outside a transaction only: before the lock's BEGIN
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            _lock_for_migration(connection)
            config.attributes["connection"] = connection
            step(config, revision)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    connection.rollback()
                    raise DatabaseError(f"迁移后外键不一致（{len(broken)} 行，如 {tuple(broken[0])}）：未提交")
            connection.commit()
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations (``govevidence db upgrade``), holding the migration lock throughout.

    A process that waited for the lock finds the schema already upgraded and does nothing.
    """
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision``, as ``upgrade`` applies them."""
    _migrate(engine, command.downgrade, revision)


def ensure_schema(engine: Engine) -> None:
    """Bring a new or older database to the newest schema; cheap when already there."""
    if current_revision(engine) != head_revision(engine):
        upgrade(engine)


def require_schema(engine: Engine) -> None:
    """Refuse a database whose schema is not the one this code was written for (no migration)."""
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    where = safe_url(engine)
    if current is None:
        raise SchemaNotCurrent(f"数据库 {where} 是空库：请先运行 govevidence db upgrade")
    try:
        ScriptDirectory.from_config(alembic_config(engine)).get_revision(current)
    except CommandError:
        raise SchemaNotCurrent(
            f"数据库 {where} 的版本 {current} 比本程序（最新 {head}）新：请升级 GovEvidence") from None
    raise SchemaNotCurrent(f"数据库 {where} 的版本 {current} 低于本程序需要的 {head}：请先运行 govevidence db upgrade")
