"""The 勾稽 rules R1–R4 and R6 of the spec, evaluated on one report's facts.

A failed rule is a finding about the report: a row with ok=False and a detail, never an error.
Arithmetic reads a printed blank as 0 (the template prints zeros blank); a rule is skipped only
where a row it needs is absent from the report. R5 needs the previous year and runs after load
(`crossyear.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nianbao.parsers.result import Check, Fact

from .registry import VERSIONS, nfkc, template

# The six applicant columns that add up to 总计 (rule R3), in print order.
APPLICANT_COLUMNS = tuple(
    c.code for c in template("2021").applications.columns if c.code != "total"
)


def _num(value) -> float:
    return float(value) if value is not None else 0.0


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _Cells:
    def __init__(self, facts: Iterable[Fact]) -> None:
        self.cells = {(f.table, f.row, f.col): f.value for f in facts}
        self.rows = {(f.table, f.row) for f in facts}

    def has(self, table: str, row: str) -> bool:
        return (table, row) in self.rows

    def get(self, table: str, row: str, col: str) -> float:
        return _num(self.cells.get((table, row, col)))


def _application_columns(cells: _Cells) -> list[str]:
    present = {col for (table, _, col) in cells.cells if table == "applications"}
    return [c for c in (*APPLICANT_COLUMNS, "total") if c in present]


def rule_r1(cells: _Cells) -> list[Check]:
    needed = ("new_received", "carried_over", "total_processed", "carried_forward")
    if not all(cells.has("applications", row) for row in needed):
        return []
    checks = []
    for col in _application_columns(cells):
        a, b, c, d = (cells.get("applications", row, col) for row in needed)
        checks.append(
            Check(
                "R1",
                col,
                a + b == c + d,
                f"{_fmt(a)}+{_fmt(b)} = {_fmt(c)}+{_fmt(d)}"
                if a + b == c + d
                else f"{_fmt(a)}+{_fmt(b)} = {_fmt(a + b)} ≠ {_fmt(c)}+{_fmt(d)} = {_fmt(c + d)}",
            )
        )
    return checks


def rule_r2(cells: _Cells, version: str) -> list[Check]:
    if not cells.has("applications", "total_processed"):
        return []
    outcome_rows = [r for r in template(version).outcome_rows() if cells.has("applications", r)]
    # (六) printed as one row and as sub-rows must not both count.
    if any(r.startswith("other_handling.") for r in outcome_rows):
        outcome_rows = [r for r in outcome_rows if r != "other_handling"]
    if not outcome_rows:
        return []
    checks = []
    for col in _application_columns(cells):
        parts = sum(cells.get("applications", row, col) for row in outcome_rows)
        printed = cells.get("applications", "total_processed", col)
        checks.append(
            Check(
                "R2",
                col,
                parts == printed,
                f"sum of {len(outcome_rows)} outcome rows {_fmt(parts)} "
                f"{'=' if parts == printed else '≠'} total_processed {_fmt(printed)}",
            )
        )
    return checks


def rule_r3(cells: _Cells) -> list[Check]:
    rows = [row for (table, row, col) in cells.cells if table == "applications" and col == "total"]
    checks = []
    for row in rows:
        parts = sum(cells.get("applications", row, col) for col in APPLICANT_COLUMNS)
        printed = cells.get("applications", row, "total")
        checks.append(
            Check(
                "R3",
                row,
                parts == printed,
                f"applicant columns {_fmt(parts)} {'=' if parts == printed else '≠'} "
                f"total {_fmt(printed)}",
            )
        )
    return checks


def rule_r4(cells: _Cells) -> list[Check]:
    checks = []
    for group in ("review", "litigation_direct", "litigation_after_review"):
        if not cells.has("review_litigation", group):
            continue
        values = [
            cells.get("review_litigation", group, col)
            for col in ("upheld", "corrected", "other", "pending")
        ]
        printed = cells.get("review_litigation", group, "total")
        ok = sum(values) == printed
        checks.append(
            Check(
                "R4",
                group,
                ok,
                "+".join(_fmt(v) for v in values)
                + f" = {_fmt(sum(values))} {'=' if ok else '≠'} total {_fmt(printed)}",
            )
        )
    return checks


# Figures the prose states, and the table cells they must equal.
_PROSE_FIGURES = (
    (
        "new_received",
        re.compile(
            r"(?:新收|收到|受理)[^。；;，,\d]{0,12}?(?:政府信息公开)?申请[^。；;，,\d]{0,4}?(\d+)\s*件"
        ),
        (("applications", "new_received", "total"),),
    ),
    (
        "review",
        re.compile(r"行政复议(?:案件|申请)?[^。；;，,\d]{0,4}?(\d+)\s*[件起]"),
        (("review_litigation", "review", "total"),),
    ),
    (
        "litigation",
        re.compile(r"(?<!复议后)(?:行政)?诉讼(?:案件)?[^。；;，,\d]{0,4}?(\d+)\s*[件起]"),
        (
            ("review_litigation", "litigation_direct", "total"),
            ("review_litigation", "litigation_after_review", "total"),
        ),
    ),
)


def rule_r6(cells: _Cells, prose: str) -> list[Check]:
    text = nfkc(prose)
    checks = []
    for scope, pattern, targets in _PROSE_FIGURES:
        if not all(cells.has(t, r) for t, r, _ in targets):
            continue
        match = pattern.search(text)
        if not match:
            continue
        stated = float(match.group(1))
        table_value = sum(cells.get(*target) for target in targets)
        ok = stated == table_value
        checks.append(
            Check(
                "R6",
                scope,
                ok,
                f"prose “{match.group(0)}” states {_fmt(stated)}; "
                f"table {'=' if ok else '≠'} {_fmt(table_value)}",
            )
        )
    return checks


def run_checks(facts: Iterable[Fact], version: str | None, prose: str = "") -> list[Check]:
    """R1–R4 and R6 for one report; `prose` is the text of its sections.

    The rules are arithmetic of the national tables: a report without them (None, or the
    pre-2019 template 2008) has none to check.
    """
    if version not in VERSIONS:
        return []
    cells = _Cells(facts)
    return (
        rule_r1(cells)
        + rule_r2(cells, version)
        + rule_r3(cells)
        + rule_r4(cells)
        + rule_r6(cells, prose)
    )
