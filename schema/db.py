"""Engines and migrations: the one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_DB_URL = "sqlite:///nianbao.db"
DB_URL_ENV = "NIANBAO_DB"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def resolve_db_url(cli_value: str | None) -> str:
    """The database URL: the CLI option, else $NIANBAO_DB, else `sqlite:///nianbao.db`."""
    return cli_value or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def engine_for(url: str) -> Engine:
    """An engine for `url`; plain `postgresql://` URLs use psycopg 3, the driver we ship."""
    sa_url = make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    if sa_url.get_backend_name() != "sqlite":
        return create_engine(sa_url, pool_pre_ping=True)

    engine = create_engine(sa_url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")  # off by default; ON DELETE CASCADE needs it
        cursor.execute("PRAGMA journal_mode = WAL")  # readers no longer block the writer
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with "database is
        # locked" when another worker committed in between; IMMEDIATE takes the write lock up
        # front, so concurrent loaders queue on the busy timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the warehouse at `url` to `revision`."""
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Take the warehouse at `url` back to `revision` (each step keeps the report data)."""
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The Alembic revision the warehouse at `url` is at; None for an empty database."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
