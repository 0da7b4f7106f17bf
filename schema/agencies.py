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
    connection: sa.Connection, table: sa.TableClause, rows: list[dict[str, object]]
) -> None:
    """One multi-row INSERT … ON CONFLICT DO NOTHING of `rows`, in their order."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).values(rows).on_conflict_do_nothing())


def agency_id_for(connection: sa.Connection, agency: Agency, printed: str) -> int:
    """The id of `agency` (created on first sight), with `printed` recorded as an alias."""
    return agency_ids_for(connection, [(agency, printed)])[agency.key]


def agency_ids_for(
    connection: sa.Connection, printed_agencies: list[tuple[Agency, str]]
) -> dict[str, int]:
    """The ids of the agencies, by key (each created on first sight), with each printed name
    recorded as an alias: three statements however many agencies.

    Rows go in in key order: two loaders inserting the same new agencies wait for each other in
    one order, never each for the other (a deadlock).
    """
    agencies = {agency.key: agency for agency, _ in printed_agencies}
    _insert_ignoring_duplicates(
        connection,
        _agencies,
        [
            {
                "key": key,
                "canonical_name": agency.canonical,
                "kind": agency.kind,
                "level": agency.level,
                "region_code": agency.region_code,
                "province": agency.province,
                "city": agency.city,
                "county": agency.county,
            }
            for key, agency in sorted(agencies.items())
        ],
    )
    ids = dict(
        connection.execute(
            sa.select(_agencies.c.key, _agencies.c.id).where(_agencies.c.key.in_(sorted(agencies)))
        ).all()
    )
    aliases = sorted({(agency.key, printed) for agency, printed in printed_agencies})
    _insert_ignoring_duplicates(
        connection,
        _aliases,
        [{"agency_id": ids[key], "name": printed} for key, printed in aliases],
    )
    return ids
