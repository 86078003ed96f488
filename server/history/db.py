"""Where the history lives, and bringing its schema up to date.

SQLite (aiosqlite) in the data folder unless ``PARLEY_DATABASE_URL`` names PostgreSQL (asyncpg): the workers of
a cluster share one database there. Alembic upgrades the schema in place at start-up; its environment is inside
the package (``migrations/``), so an installed server upgrades its own database without an ``alembic.ini``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.config import Settings

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_FILE = "parley.sqlite"
# How long an SQLite write waits for another writer's lock (another worker on the host, a backup) before it fails:
# the writer's queue absorbs the wait, and a failure costs one record, never the call.
SQLITE_BUSY_S = 5.0
MIGRATION_LOCK = 7402117  # PostgreSQL advisory lock key held while migrating (any constant of our own)
_MIGRATING = threading.Lock()


def data_dir(settings: Settings) -> Path:
    """``PARLEY_DATA_DIR``, else the XDG data folder (``~/.local/share/parley``)."""
    if settings.data_dir:
        return Path(settings.data_dir).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parley"


def database_url(settings: Settings) -> str:
    """The async driver's URL: ``postgresql://`` gets asyncpg, ``sqlite://`` aiosqlite, none the data folder's file."""
    url = settings.database_url.strip()
    if not url:
        return f"sqlite+aiosqlite:///{data_dir(settings) / SQLITE_FILE}"
    scheme, rest = url.split("://", 1)
    driver = {"postgres": "postgresql+asyncpg", "postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
    return f"{driver.get(scheme, scheme)}://{rest}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _sqlite_begin, not by the driver
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite: deletes cascade only with it
    cursor.execute("PRAGMA journal_mode=WAL")  # the API's reads do not wait for the writer, nor it for them
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at each checkpoint, no fsync per turn
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # The driver's own transactions leave DDL outside them (a migration cut half-way would stay half done, and
    # two workers migrating at once cut each other) and take the write lock only at the first write (a read then
    # a write fails at once when another process wrote meanwhile). SQLAlchemy's recipe for both, with IMMEDIATE:
    # the write lock from the start, waited for up to the busy timeout.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str) -> AsyncEngine:
    """An engine that connects when first used (a database that is away at start-up fails writes, not the server)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_S})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # pool_pre_ping: a connection the server dropped (a restart, a fail-over) is replaced, not used and failed.
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Brings the database to ``revision`` (Alembic, on one of the engine's connections)."""

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":  # workers starting together migrate one after the other
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


def migrate(url: str, revision: str = "head") -> None:
    """Upgrades the database at ``url`` (blocking: run it in a thread, with its own event loop and engine). One
    at a time in a process: Alembic's ``context`` is module state."""

    if url.startswith("sqlite") and ":///" in url and not url.endswith(":memory:"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)  # the data folder, the first time

    async def main() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()

    with _MIGRATING:
        asyncio.run(main())
