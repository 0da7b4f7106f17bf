"""The harvest's tables: harvest_log (every request) and harvest_entries (what a listing said of
a document). The crawler reads and writes them only through these functions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, insert, select

from .models import HarvestEntry, HarvestLog


def last_stored_copy(engine: Engine, url: str) -> Row | None:
    """(sha256, etag, last_modified) of the newest request of `url` that stored a body."""
    query = (
        select(HarvestLog.sha256, HarvestLog.etag, HarvestLog.last_modified)
        .where(HarvestLog.url == url, HarvestLog.sha256.is_not(None))
        .order_by(HarvestLog.fetched_at.desc(), HarvestLog.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.execute(query).one_or_none()


def log_requests(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """One harvest_log row per request, in one transaction."""
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(HarvestLog), rows)


def record_entry(engine: Engine, row: dict[str, Any]) -> None:
    """A harvest_entries row, unless one for the same document and entry exists."""
    known = select(HarvestEntry.id).where(
        HarvestEntry.sha256 == row["sha256"], HarvestEntry.entry_url == row["entry_url"]
    )
    with engine.begin() as conn:
        if conn.execute(known.limit(1)).first() is None:
            conn.execute(insert(HarvestEntry), row)
