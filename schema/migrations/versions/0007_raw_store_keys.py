"""Raw bytes by key: `documents.raw_path` holds the key under the raw store's root.

Before, it held the absolute path of the file on the machine that ran the ingest, which no other
machine of a team can use, and which broke when the store moved. Now it holds the key
(`ab/abcdef….pdf`); the root is configuration ($NIANBAO_RAW or `--raw-dir`: a folder or an fsspec
URL). Stored paths become their keys; a path that does not end in a key (not written by the raw
store) is cleared, since the bytes are found by sha256 anyway.

The downgrade keeps the keys: the root they were under is not known to the warehouse, and a key
is a path relative to it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of harvest/rawstore.py's key shape: a migration must not change meaning when
# the live code does.
KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]{1,8})?$")
COMMENT = "key of the raw bytes under the raw store root ($NIANBAO_RAW), e.g. ab/abcd….pdf"
documents = sa.table("documents", sa.column("sha256", sa.Text), sa.column("raw_path", sa.Text))


def _key(stored: str) -> str | None:
    key = "/".join(PurePosixPath(stored.replace("\\", "/")).parts[-2:])
    return key if KEY.match(key) else None


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(documents.c.sha256, documents.c.raw_path).where(documents.c.raw_path.is_not(None))
    ).all()
    changes = [{"sha": sha, "key": _key(path)} for sha, path in rows if _key(path) != path]
    if changes:
        connection.execute(
            documents.update()
            .where(documents.c.sha256 == sa.bindparam("sha"))
            .values(raw_path=sa.bindparam("key")),
            changes,
        )
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"COMMENT ON COLUMN documents.raw_path IS '{COMMENT}'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("COMMENT ON COLUMN documents.raw_path IS NULL")
