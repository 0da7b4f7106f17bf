"""The `runs` table: one row per ingest run, which every document and report it loads names.

Library code (no Prefect): the ingest flow opens a run with its Prefect flow run id and closes
it with its counts; a script that calls `load_document` may open one too.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, insert, select, update

from nianbao.schema.models import Report, Run, utcnow

COUNTS = ("documents_seen", "loaded", "reloaded", "unchanged", "failed", "not_a_report")


def start_run(engine: Engine, flow: str, flow_run_id: str | None = None) -> int:
    """A new `running` run; its id is what `load_document(run_id=…)` records."""
    with engine.begin() as connection:
        return connection.execute(
            insert(Run)
            .values(flow=flow, flow_run_id=flow_run_id, started_at=utcnow(), state="running")
            .returning(Run.id)
        ).scalar_one()


def finish_run(engine: Engine, run_id: int, counts: Mapping[str, int], failed: bool) -> None:
    """Close the run: its finish time, `completed` or `failed`, and its document counts."""
    unknown = set(counts) - set(COUNTS)
    if unknown:
        raise ValueError(f"unknown run counts: {sorted(unknown)}")
    with engine.begin() as connection:
        connection.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                finished_at=utcnow(),
                state="failed" if failed else "completed",
                **{name: counts.get(name, 0) for name in COUNTS},
            )
        )


def reports_of_run(engine: Engine, run_id: int) -> list[int]:
    """The ids of the reports the run loaded (or reloaded): what R5 re-checks after it."""
    with engine.connect() as connection:
        return list(connection.execute(select(Report.id).where(Report.run_id == run_id)).scalars())
