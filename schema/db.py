"""Engines and migrations: the one code path for SQLite and PostgreSQL.

Also what a run needs to survive its database: session timeouts so that a stale lock never
hangs a run, a bounded retry while the server is away, one-line errors that say what to fix, and
URLs whose password never leaves the process that was given it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

DEFAULT_DB_URL = "sqlite:///nianbao.db"
DB_URL_ENV = "NIANBAO_DB"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# Key of the PostgreSQL advisory lock that serialises migrations ("nianbao" in ASCII).
_MIGRATION_LOCK = 0x6E69616E62616F

if TYPE_CHECKING:
    from alembic.config import Config

_T = TypeVar("_T")
logger = logging.getLogger(__name__)


class DatabaseUrlError(ValueError):
    """The database URL is not one nianbao can use: a usage error, not an outage."""


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Time bounds on the warehouse's sessions, in seconds; environment variables override them.

    PostgreSQL enforces the first three on every session nianbao opens, so a session left behind
    by a killed run releases its locks, and a run waiting on a lock says so instead of hanging.
    """

    lock_timeout: float = 60.0  # NIANBAO_DB_LOCK_TIMEOUT
    statement_timeout: float = 600.0  # NIANBAO_DB_STATEMENT_TIMEOUT
    idle_in_transaction_timeout: float = 60.0  # NIANBAO_DB_IDLE_TIMEOUT
    connect_timeout: float = 10.0  # NIANBAO_DB_CONNECT_TIMEOUT
    # How long a run keeps retrying while the database is away before it stops with its summary.
    retry_seconds: float = 300.0  # NIANBAO_DB_RETRY_SECONDS

    @classmethod
    def from_env(cls) -> DatabaseSettings:
        names = {
            "lock_timeout": "NIANBAO_DB_LOCK_TIMEOUT",
            "statement_timeout": "NIANBAO_DB_STATEMENT_TIMEOUT",
            "idle_in_transaction_timeout": "NIANBAO_DB_IDLE_TIMEOUT",
            "connect_timeout": "NIANBAO_DB_CONNECT_TIMEOUT",
            "retry_seconds": "NIANBAO_DB_RETRY_SECONDS",
        }
        values: dict[str, float] = {}
        for field_name, variable in names.items():
            raw = os.environ.get(variable)
            if raw is None:
                continue
            try:
                values[field_name] = float(raw)
            except ValueError:
                raise DatabaseUrlError(f"{variable}={raw!r} is not a number of seconds") from None
            if values[field_name] < 0:
                raise DatabaseUrlError(f"{variable}={raw!r} must not be negative")
        return cls(**values)


def resolve_db_url(cli_value: str | None) -> str:
    """The database URL: the CLI option, else $NIANBAO_DB, else `sqlite:///nianbao.db`."""
    return cli_value or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def check_db_url(url: str) -> URL:
    """The parsed URL, or DatabaseUrlError saying why nianbao cannot use it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            f"{mask_secrets(url)!r} is not a database URL "
            "(expected sqlite:///path.db or postgresql+psycopg://user@host/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseUrlError(
            f"{backend} is not supported: the warehouse is SQLite or PostgreSQL "
            "(sqlite:///path.db or postgresql+psycopg://user@host/db)"
        )
    return parsed


# Passwords this process was given; masked wherever text leaves it (logs, messages).
_SECRETS: set[str] = set()


def mask_secrets(message: str) -> str:
    for secret in _SECRETS:
        message = message.replace(secret, "***")
    return message


def _remember_secret(url: URL) -> None:
    if url.password:
        _SECRETS.add(str(url.password))


def public_db_url(url: str) -> str:
    """`url` with its password removed: what may be shown, logged or stored in Prefect.

    The process that runs the flow completes it again with `complete_db_url`.
    """
    parsed = make_url(url)
    _remember_secret(parsed)
    # URL.set() takes None as "leave as it is": replace the field itself.
    return parsed._replace(password=None).render_as_string(hide_password=False)


def _same_database(a: URL, b: URL) -> bool:
    return (a.get_backend_name(), a.host, a.port, a.username, a.database) == (
        b.get_backend_name(),
        b.host,
        b.port,
        b.username,
        b.database,
    )


def complete_db_url(url: str) -> str:
    """A URL without a password, completed from $NIANBAO_DB when that names the same database.

    Otherwise the URL is used as it is, and the PostgreSQL driver's own sources apply
    (PGPASSWORD, ~/.pgpass, a service file).
    """
    parsed = check_db_url(url)
    if parsed.password is None and (env := os.environ.get(DB_URL_ENV)):
        try:
            candidate = make_url(env)
        except ArgumentError:
            return url
        if candidate.password is not None and _same_database(parsed, candidate):
            _remember_secret(candidate)
            return candidate.render_as_string(hide_password=False)
    _remember_secret(parsed)
    return url


def engine_for(url: str, settings: DatabaseSettings | None = None) -> Engine:
    """An engine for `url`; plain `postgresql://` URLs use psycopg 3, the driver we ship."""
    settings = settings or DatabaseSettings.from_env()
    sa_url = check_db_url(url)
    _remember_secret(sa_url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    if sa_url.get_backend_name() != "sqlite":
        options = " ".join(
            f"-c {name}={int(seconds * 1000)}"
            for name, seconds in (
                ("lock_timeout", settings.lock_timeout),
                ("statement_timeout", settings.statement_timeout),
                ("idle_in_transaction_session_timeout", settings.idle_in_transaction_timeout),
            )
        )
        return create_engine(
            sa_url,
            pool_pre_ping=True,
            connect_args={
                "options": options,
                "connect_timeout": max(1, round(settings.connect_timeout)),
            },
        )

    engine = create_engine(sa_url, connect_args={"timeout": max(settings.lock_timeout, 1.0)})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")  # off by default; ON DELETE CASCADE needs it
        cursor.execute("PRAGMA journal_mode = WAL")  # readers no longer block the writer
        # In WAL mode NORMAL syncs at checkpoints, not every commit: a power cut may lose the
        # last loads, never corrupt the file, and a lost load is redone by the next run.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with "database is
        # locked" when another worker committed in between; IMMEDIATE takes the write lock up
        # front, so concurrent loaders queue on the busy timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def describe_db_error(exc: BaseException) -> str:
    """One line saying what went wrong with the database, without a password in it."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first_line = next((line for line in str(original).splitlines() if line.strip()), "")
    return mask_secrets(first_line.strip() or type(original).__name__)


def is_outage(exc: BaseException) -> bool:
    """An error that waiting may cure: the server away, a connection cut, a lock not granted.

    Not a full disk: SQLite says so with an OperationalError too, and waiting will not help.
    """
    if isinstance(exc, DBAPIError) and "disk is full" in str(exc.orig):
        return False
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def retry_while_unavailable(
    action: Callable[[], _T],
    retry_seconds: float,
    on_retry: Callable[[str, float], None] | None = None,
) -> _T:
    """Run `action`, retrying with backoff while the database is away, for at most
    `retry_seconds`; then DatabaseUnavailable. Errors that waiting cannot cure pass through."""
    deadline = time.monotonic() + retry_seconds
    delay = 1.0
    while True:
        try:
            return action()
        except DBAPIError as exc:
            if not is_outage(exc):
                raise
            left = deadline - time.monotonic()
            reason = describe_db_error(exc)
            if left <= 0:
                raise DatabaseUnavailable(
                    f"database unavailable for {retry_seconds:g} s, gave up: {reason}"
                ) from exc
            wait = min(delay, left)
            logger.warning("database unavailable, retrying in %.0f s: %s", wait, reason)
            if on_retry:
                on_retry(reason, wait)
            time.sleep(wait)
            delay = min(delay * 2, 30.0)


def connect_or_explain(url: str) -> None:
    """Open and close one connection; DatabaseUnavailable with a one-line reason if it fails.

    Run first, so a wrong host, port or password is one clear line rather than a traceback.
    """
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise DatabaseUnavailable(
            f"cannot use the database {public_db_url(url)}: {describe_db_error(exc)}"
        ) from exc
    except NoSuchModuleError as exc:
        raise DatabaseUrlError(f"no driver for {make_url(url).drivername}: {exc}") from None
    finally:
        engine.dispose()


# Alembic is imported where migrations run, not with this module: a parser process that loads
# its batches imports the loader, which needs engines only (Alembic is a third of its import).
def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _head(connection: Connection) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the warehouse at `url` to `revision`; safe to run concurrently.

    On PostgreSQL a transaction-scoped advisory lock serialises migrations, so two runs
    starting together on an empty database both succeed (the second finds the schema made);
    on SQLite the write lock of BEGIN IMMEDIATE does the same.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if revision == "head" and current is not None and current == _head(connection):
                return
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            command.upgrade(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Take the warehouse at `url` back to `revision` (each step keeps the report data)."""
    from alembic import command

    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The Alembic revision the warehouse at `url` is at; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def install_secret_masking() -> None:
    """Mask known passwords in every log record this process creates (Prefect's included)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_secrets", False):
        return

    def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if _SECRETS:
            message = record.getMessage()
            masked = mask_secrets(message)
            if masked != message:
                record.msg, record.args = masked, None
        return record

    masking_factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masking_factory)
