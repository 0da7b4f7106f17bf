"""Alembic environment: run programmatically by `nianbao.schema.db.upgrade`, which hands over a
connection, or by developers with `alembic -c schema/migrations/alembic.ini ...` against
$NIANBAO_DB (default `sqlite:///nianbao.db`)."""

from alembic import context
from sqlalchemy import Connection

from nianbao.schema.db import engine_for, resolve_db_url
from nianbao.schema.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run against a database")

shared = context.config.attributes.get("connection")
if shared is not None:
    run_migrations(shared)
else:
    engine = engine_for(resolve_db_url(None))
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()
