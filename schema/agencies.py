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
# Built once (a built statement keeps its cache key): see `_insert_ignoring_duplicates`.
_IDS = sa.select(_agencies.c.key, _agencies.c.id).where(
    _agencies.c.key.in_(sa.bindparam("keys", expanding=True))
)
_INSERTS = {
    (name, table.name): dialect.insert(table).on_conflict_do_nothing()
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
    for table in (_agencies, _aliases)
}


def _insert_ignoring_duplicates(
    connection: sa.Connection, table: sa.TableClause, rows: list[dict[str, object]]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING of `rows`, in their order.

    An executemany of one statement, compiled once a process: a multi-row VALUES statement
    compiles anew for every batch (its shape changes with the number of rows), which cost a
    loader more of its CPU than every statement it sends but the COPYs (bench/bench_load.py).
    """
    if not rows:
        return
    dialect = "postgresql" if connection.dialect.name == "postgresql" else "sqlite"
    connection.execute(_INSERTS[dialect, table.name], rows)


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
    ids = dict(connection.execute(_IDS, {"keys": sorted(agencies)}).all())
    aliases = sorted({(agency.key, printed) for agency, printed in printed_agencies})
    _insert_ignoring_duplicates(
        connection,
        _aliases,
        [{"agency_id": ids[key], "name": printed} for key, printed in aliases],
    )
    return ids
