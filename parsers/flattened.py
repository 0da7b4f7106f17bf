"""Tables whose cell boundaries were lost: a crawler's page text runs cells together.

`规章000行政规范性文件8855698` holds a label and its numbers with no separator. A run of digits
is split into the row's cells only where exactly one split is possible: every cell of a row of
table 三 must add up to its printed 总计 (and table 四's groups to theirs), or each digit is one
cell, or the row has a single cell. Anything else is reported as `fused_cells`, never guessed.
The recovered rows become an ordinary text Table, so row matching is the same as for any table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from nianbao.schema.numbering import LABEL_BOUNDARY, NUMERALS
from nianbao.schema.registry import Row, normalize_label, prints_header, template

from .blocks import Cell, Table
from .result import Problem
from .tables import ROW_MATCH, best_row

# A label (no ASCII digits) followed by a run of digits, spaces and decimal points.
_SEGMENT = re.compile(r"(?P<label>[^\d]+?)\s*(?P<run>\d[\d .]*)")
# The sub-row number glued to the end of the previous run: `00000002.其他法律…`. It is rewritten
# as a Chinese numeral so that it leaves the run and stays with its label.
_GLUED_NUMBER = re.compile(r"([1-9])[.．、](?=[^\d\s])")
MAX_DIGITS = 9


def _splits(run: str, parts: int) -> list[list[str]]:
    """Every way to cut `run` into `parts` numbers without leading zeros; spaces are hard cuts."""
    chunks = run.split()
    results: list[list[str]] = []

    def cut(chunk: str) -> list[list[str]]:
        if not chunk:
            return [[]]
        out = []
        for size in range(1, min(len(chunk), MAX_DIGITS) + 1):
            head = chunk[:size]
            if len(head) > 1 and head[0] == "0" or head.endswith("."):
                continue
            out += [[head, *rest] for rest in cut(chunk[size:])]
        return out

    def walk(index: int, acc: list[str]) -> None:
        if len(acc) > parts or len(results) > 10_000:
            return
        if index == len(chunks):
            if len(acc) == parts:
                results.append(acc)
            return
        for option in cut(chunks[index]):
            walk(index + 1, acc + option)

    walk(0, [])
    return results


def _sums_hold(group: int) -> Callable[[list[str]], bool]:
    """Each consecutive `group` cells: the last is the sum of the others."""

    def check(cells: list[str]) -> bool:
        numbers = [float(c) for c in cells]
        return all(
            abs(sum(numbers[i : i + group - 1]) - numbers[i + group - 1]) < 1e-9
            for i in range(0, len(numbers), group)
        )

    return check


def decode_run(
    run: str, parts: int, constraint: Callable[[list[str]], bool] | None
) -> list[str] | None:
    run = run.strip().rstrip(".")
    if parts == 1:
        # More decimals than any amount is printed with means two cells ran together.
        whole = run.replace(" ", "")
        return [whole] if re.fullmatch(r"\d+(?:\.\d{1,4})?", whole) else None
    candidates = _splits(run, parts)
    if constraint is not None:
        candidates = [c for c in candidates if constraint(c)]
    elif len(run.replace(" ", "")) != parts and len(run.split()) != parts:
        return None
    unique = {tuple(c) for c in candidates}
    return list(next(iter(unique))) if len(unique) == 1 else None


def recover_table(table_code: str, text: str, version: str) -> tuple[Table | None, list[Problem]]:
    """Rows of one template table recovered from run-together text, and what could not be."""
    spec = template(version)
    if not prints_header(table_code, text):
        # Without the table's own header, digits after a row name are prose (办理行政许可1件).
        return None, []
    text = _GLUED_NUMBER.sub(lambda m: NUMERALS[int(m[1]) - 1] + "、", text)
    rows: list[list[Cell]] = []
    problems: list[Problem] = []
    for match in _SEGMENT.finditer(text):
        run = match["run"].strip()
        labels = [p.strip() for p in LABEL_BOUNDARY.split(match["label"]) if p.strip()]
        leaf = labels[-1] if labels else ""
        if table_code == "applications":
            width = len(spec.applications.columns)
            parts, constraint = width, _sums_hold(width)
            score, _ = best_row(normalize_label(leaf), spec.applications.rows)
        elif table_code == "review_litigation":
            width = len(spec.review_litigation.columns)
            parts, constraint = width * len(spec.review_groups), _sums_hold(width)
            # Its one value row follows the header, which ends with 总计.
            score, labels = (1.0 if leaf.endswith("总计") else 0.0), []
        else:
            row = _row_ending(normalize_label(match["label"]), spec.active_disclosure.rows)
            score, labels = (1.0, [row.label]) if row else (0.0, [])
            parts, constraint = (len(row.columns) if row else 0), None
        if score < ROW_MATCH:
            continue
        cells = decode_run(run, parts, constraint)
        if cells is None:
            problems.append(
                Problem(
                    "fused_cells",
                    f"{table_code}: the cells of “{labels[-1] if labels else leaf}” "
                    f"run together as “{run}” "
                    f"and cannot be split into {parts} cells unambiguously",
                )
            )
            continue
        rows.append([Cell(label) for label in labels] + [Cell(c) for c in cells])
    if rows:
        problems.append(
            Problem(
                "fused_cells_decoded",
                f"{table_code}: {len(rows)} rows split from run-together digits"
                + (
                    " using the printed totals, so R3/R4 hold by construction"
                    if table_code != "active_disclosure"
                    else ""
                ),
            )
        )
    return (Table(rows) if rows else None), problems


def _row_ending(text: str, rows: tuple[Row, ...]) -> Row | None:
    """The row whose label the run-together text ends with (the longest, so 行政规范性文件 wins
    over 规范性文件)."""
    endings = [(len(label), row) for row in rows for label in row.labels() if text.endswith(label)]
    return max(endings, key=lambda pair: pair[0])[1] if endings else None
