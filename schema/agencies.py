"""The agencies dimension: one row per publishing body, found or created by its identity key.

Shared by the loader and the 0003 migration's back-fill, on an open connection, so both write
agencies the same way. Inserts are ON CONFLICT DO NOTHING so concurrent loaders of reports of
one agency end up with one row.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nianbao.parsers.agency import Agency

_agencies = sa.table(
    "agencies",
    sa.column("id"),
    sa.column("key"),
    sa.column("canonical_name"),
    sa.column("kind"),
    sa.column("level"),
    sa.column("region_code"),
    sa.column("province"),
    sa.column("city"),
    sa.column("county"),
)
_aliases = sa.table("agency_aliases", sa.column("id"), sa.column("agency_id"), sa.column("name"))


def _insert_ignoring_duplicates(
    connection: sa.Connection, table: sa.TableClause, row: dict[str, object]
) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).values(row).on_conflict_do_nothing())


def agency_id_for(connection: sa.Connection, agency: Agency, printed: str) -> int:
    """The id of `agency` (created on first sight), with `printed` recorded as an alias."""
    _insert_ignoring_duplicates(
        connection,
        _agencies,
        {
            "key": agency.key,
            "canonical_name": agency.canonical,
            "kind": agency.kind,
            "level": agency.level,
            "region_code": agency.region_code,
            "province": agency.province,
            "city": agency.city,
            "county": agency.county,
        },
    )
    agency_id = connection.scalar(sa.select(_agencies.c.id).where(_agencies.c.key == agency.key))
    _insert_ignoring_duplicates(connection, _aliases, {"agency_id": agency_id, "name": printed})
    return agency_id
