"""R5, the cross-year rule: carried_over(N) = carried_forward(N-1) of the same agency, per column.

It needs two reports, so it runs after loading, over the current report of each (agency, year).
Reports are linked by agency id (the agencies dimension), so a title that names the city one
year and not the next still links the two years.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import Engine, Select, delete, insert, select
from sqlalchemy.orm import Session, aliased

from nianbao.schema.models import Check, Fact, Report

RULE = "R5"
_CHUNK = 500


def evaluate_r5(engine: Engine, report_ids: Iterable[int] | None = None) -> int:
    """Write (replacing) the R5 checks of current reports; return how many rows were written.

    With `report_ids`, only those reports and the next year's reports of the same agencies are
    evaluated (a newly loaded year N-1 changes the verdict on year N). A report whose agency
    did not resolve, or has no current report for the previous year, gets no R5 rows; only
    columns present in both years are compared. A blank cell counts as 0, since reports print
    blanks for zero; the detail says "blank".
    """
    with Session(engine) as session, session.begin():
        current = session.execute(
            select(Report.id, Report.agency_id, Report.year).where(
                Report.is_current, Report.agency_id.is_not(None), Report.year.is_not(None)
            )
        ).all()
        targets = [rid for rid, _, _ in current]
        if report_ids is not None:
            ids = set(report_ids)
            given = {(agency, year) for rid, agency, year in current if rid in ids}
            targets = [
                rid
                for rid, agency, year in current
                if (agency, year) in given or (agency, year - 1) in given
            ]
        written = 0
        # Chunks keep the IN lists under SQLite's limit on bound parameters.
        for start in range(0, len(targets), _CHUNK):
            chunk = targets[start : start + _CHUNK]
            session.execute(delete(Check).where(Check.rule == RULE, Check.report_id.in_(chunk)))
            rows = [_check_row(*pair) for pair in session.execute(_pairs(chunk))]
            if rows:
                session.execute(insert(Check), rows)
            written += len(rows)
        return written


def _pairs(report_ids: list[int]) -> Select[tuple[int, int, str, Decimal | None, Decimal | None]]:
    """carried_over(N) beside carried_forward(N-1), per column, for the given current reports."""
    prev = aliased(Report)
    over = aliased(Fact)
    forward = aliased(Fact)
    return (
        select(Report.id, Report.year, over.col_code, over.value, forward.value)
        .join(prev, (prev.agency_id == Report.agency_id) & (prev.year == Report.year - 1))
        .join(over, over.report_id == Report.id)
        .join(forward, (forward.report_id == prev.id) & (forward.col_code == over.col_code))
        .where(
            Report.id.in_(report_ids),
            prev.is_current,
            over.table_code == "applications",
            over.row_code == "carried_over",
            forward.table_code == "applications",
            forward.row_code == "carried_forward",
        )
        .order_by(Report.id, over.id)
    )


def _check_row(
    report_id: int, year: int, col: str, now: Decimal | None, before: Decimal | None
) -> dict[str, object]:
    return {
        "report_id": report_id,
        "rule": RULE,
        "scope": col,
        "ok": (now or 0) == (before or 0),
        "detail": f"carried_over {year} = {_show(now)}; "
        f"carried_forward {year - 1} = {_show(before)}",
    }


def _show(value: Decimal | None) -> str:
    return "blank" if value is None else str(value)
