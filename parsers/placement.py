"""Rows whose label names no template row, placed by the template's row order and the printed sums.

OCR misreads a row label (重复申请 → 复中调, 总计 → 基计) and converters drop one (a row of values
with no label): such a row is held back while the table is read. Afterwards each held row lies
in a gap between rows that were matched by their labels. Where the template prints exactly as
many rows in that gap, not yet read, as rows were held there, the held rows are those rows, in
order — tentatively. A placement stands only where the printed sums agree with it (rules R1 and
R2, which every row of table 三 takes part in): with the row placed, every sum that held without
it still holds, and at least one sum over a column the row adds to, that did not hold (or could
not be computed), now holds. A row of zeros changes no sum: the order alone places it, since no
sum can disagree. Everything else is left unmapped, with a finding that names what the order suggested — never guessed.

A row read by OCR that the sums as read do not confirm is judged again with the sums as
`ocr_check.py` would leave them, its digit corrections made: a misread digit elsewhere can make
a sum hold by chance without the row (and break it with the row) or fail either way; the
corrections it allows are those the printed sums alone confirm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from nianbao.schema.checks import run_checks

if TYPE_CHECKING:
    from .result import Fact

# The sums that tell where a row of table 三 stands: R1 (received + carried over = processed +
# carried forward) and R2 (the outcome rows add up to 总计).
_PLACING_RULES = frozenset({"R1", "R2"})


@dataclass(slots=True)
class HeldRow:
    """A row of values held back because its label names no template row."""

    label: str
    # Its facts as they would be emitted, under a row code still to be chosen.
    facts: list[Fact]
    # Where in the extraction's facts its own would stand, and the template position of the
    # last row read by its label before it (-1 at the table's start).
    at: int
    after: int


@dataclass(slots=True)
class Placement:
    held: HeldRow
    # The template row the order suggests (None: the order names none), and whether the sums agree.
    code: str | None
    confirmed: bool
    why: str


def place_rows(
    held: list[HeldRow],
    facts: list[Fact],
    order: list[str],
    version: str,
    resembles: Callable[[HeldRow, str], bool],
) -> list[Placement]:
    """Decide, for each held row of one table, the template row it is (see the module doc).

    `facts` are the table's facts read by label, in print order; `order` is the table's row
    codes in the template's print order; `resembles` says whether a held row's label may be a
    reading of a template row's (a printed text label that names another row is not one).
    """
    position = {code: index for index, code in enumerate(order)}
    read = {f.row for f in facts if f.row in position}
    placements: list[Placement] = []
    tentative: list[Placement] = []
    for gap, rows in _gaps(held, facts, position).items():
        after, before = gap
        candidates = _candidates(order[after + 1 : before], read, len(rows))
        if candidates is None:
            free = [c for c in order[after + 1 : before] if c not in read]
            why = (
                f"the template prints {len(free)} unread row(s) there ({', '.join(free) or 'none'}) "
                f"for {len(rows)} such row(s)"
            )
            placements += [Placement(row, None, False, why) for row in rows]
            continue
        for row, code in zip(rows, candidates, strict=True):
            if resembles(row, code):
                tentative.append(Placement(row, code, True, ""))
            else:
                why = f"its label does not read as that row's ({code})"
                placements.append(Placement(row, code, False, why))
    # Each tentative placement is judged with the others in place (a misread 总计 row is what
    # lets R2 confirm a misread outcome row); one the sums refute is dropped and the rest judged
    # again without it.
    while tentative:
        refuted = []
        for placement in tentative:
            others = [p for p in tentative if p is not placement]
            without = _sums(facts, others, version)
            with_it = _sums(facts, [*others, placement], version)
            placement.confirmed, placement.why = _agree(placement.held, without, with_it)
            if not placement.confirmed and _read_by_ocr(facts, placement):
                # Judged again with the digits the sums settle mended (costly, so only here).
                without = _sums(facts, others, version, mended=True)
                with_it = _sums(facts, [*others, placement], version, mended=True)
                placement.confirmed, placement.why = _agree(placement.held, without, with_it)
            if not placement.confirmed:
                refuted.append(placement)
        if not refuted:
            break
        placements += refuted
        tentative = [p for p in tentative if p not in refuted]
    return placements + tentative


def _gaps(
    held: list[HeldRow], facts: list[Fact], position: dict[str, int]
) -> dict[tuple[int, int], list[HeldRow]]:
    """Held rows by the template positions of the rows read by label around them."""
    gaps: dict[tuple[int, int], list[HeldRow]] = {}
    for row in held:
        before = next(
            (position[f.row] for f in facts[row.at :] if f.row in position), len(position)
        )
        gaps.setdefault((row.after, before), []).append(row)
    return gaps


def _candidates(free: list[str], read: set[str], wanted: int) -> list[str] | None:
    """The unread rows of a gap, if they are as many as the rows held there.

    A row printed either whole or as sub-rows (其他处理 and its 1、2、3) counts once: the
    variant the report did not print is dropped where that makes the numbers meet.
    """
    unread = [code for code in free if code not in read and not _alternative_read(code, read)]
    parents = {code for code in unread if any(c.startswith(code + ".") for c in unread)}
    variants = (
        unread,
        [c for c in unread if c not in parents],
        [c for c in unread if c.split(".")[0] not in parents or c in parents],
    )
    fitting = {tuple(v) for v in variants if len(v) == wanted}
    return list(fitting.pop()) if len(fitting) == 1 else None


def _alternative_read(code: str, read: set[str]) -> bool:
    """The row's other variant (the whole row, or its sub-rows) was read."""
    parent = code.split(".")[0]
    return (code != parent and parent in read) or any(r.startswith(code + ".") for r in read)


def _read_by_ocr(facts: list[Fact], placement: Placement) -> bool:
    return any(f.confidence is not None for f in [*facts, *placement.held.facts])


def _sums(
    facts: list[Fact], placed: list[Placement], version: str, mended: bool = False
) -> dict[tuple[str, str], bool]:
    rows = list(facts)
    for placement in placed:
        rows += [replace(f, row=placement.code) for f in placement.held.facts]
    if mended:
        from .ocr_check import mend_digits

        rows = mend_digits(rows, version)
    return {
        (check.rule, check.scope): check.ok
        for check in run_checks(rows, version)
        if check.rule in _PLACING_RULES
    }


def _agree(
    row: HeldRow,
    without: dict[tuple[str, str], bool],
    with_it: dict[tuple[str, str], bool],
) -> tuple[bool, str]:
    broken = sorted(
        f"{rule} {scope}"
        for (rule, scope), ok in without.items()
        if ok and not with_it.get((rule, scope))
    )
    if broken:
        return False, "with it there, the printed sums " + ", ".join(broken) + " no longer hold"
    # Only a sum over a column the row adds to speaks for it: where it prints 0, a sum that
    # newly holds held for want of the row's place (R1 needs all four of its rows).
    adds_to = {f.col for f in row.facts if f.value}
    made = sorted(
        f"{rule} {scope}"
        for (rule, scope), ok in with_it.items()
        if ok and not without.get((rule, scope)) and scope in adds_to
    )
    if made:
        return True, "the printed sums " + ", ".join(made) + " hold only with it there"
    if all(not f.value for f in row.facts):
        return True, "a row of zeros, which no printed sum can place otherwise"
    return False, "no printed sum confirms it there"
