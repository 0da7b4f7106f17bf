"""Table grids -> facts: template rows × columns, matched by normalised labels.

Every table of the document is read as one stream of rows. A row is split into its label parts
(the label cells, including group cells spanning down from above) and its value cells. Which
template table a row belongs to comes from the section the table sits in and from the template
header rows themselves (信息内容 | 本年制发件数, the applicant columns, 结果维持 | 结果纠正), so
tables split across pages or printed as several small blocks still map right.

Only template tables give facts. A table is one when it prints a template header, or when it sits
in a template table's section (or continues one) and the template rows it prints come in the
template's order: a table of other statistics that happens to hold a template row label does not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from itertools import compress

from nianbao.schema.registry import (
    TABLE_CODES,
    VERSIONS,
    Row,
    Template,
    header_markers,
    normalize_label,
    similarity,
    template,
)

from .blocks import Cell, Table
from .placement import HeldRow, place_rows
from .result import Fact, Problem
from .values import is_value_text, parse_value

ROW_MATCH = 0.6
GROUP_MATCH = 0.8
# An OCR'd label (its row's values carry a confidence) too garbled for ROW_MATCH is still the
# row it is most like when it is at least this like it, by this margin over any other row, and
# that row comes next in the template's order (not read yet, after the rows read so far).
OCR_ROW_MATCH = 0.4
OCR_ROW_MARGIN = 0.1
# Numbering an OCR'd label may keep (8. read as 8, 七) as 七): one or two leading characters.
_STRAY_NUMBERING = re.compile(r"^[0-9A-Za-z一二三四五六七八九十]{1,2}")
# A text label too unlike every template row to be matched may still be a misspelt one where
# the template's order and the printed sums place it (`placement.py`): at least this like it.
PLACE_MATCH = 0.5
# Header words of one template table a row must print to be that table's header: one could be a
# stray word; two in one row are a header.
HEADER_WORDS_NEEDED = 2
# Cell texts repeat within a report and across reports (labels, 0, 无): what is read from one
# text alone is cached, for this many recent texts, so a long run's memory stays bounded.
_TEXT_CACHE = 1 << 16


@dataclass(slots=True)
class RowView:
    parts: list[str]
    values: list[str]
    page: int | None = None
    # The cells the values were read from (their OCR confidence), where known.
    cells: list[Cell] = field(default_factory=list)

    @property
    def leaf(self) -> str:
        return self.parts[-1] if self.parts else ""

    def joined(self) -> str:
        return normalize_label("".join(self.parts))


@dataclass(slots=True)
class Extraction:
    facts: list[Fact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Template tables recognised by a printed header, in the order first seen.
    headers: list[str] = field(default_factory=list)


@lru_cache(maxsize=_TEXT_CACHE)
def _label_like(text: str) -> bool:
    return bool(text.strip()) and not is_value_text(text)


# CellValue is frozen, so one parse of a text can serve every cell that prints it.
_parse_value = lru_cache(maxsize=_TEXT_CACHE)(parse_value)


def row_views(table: Table) -> list[RowView]:
    """Each printed row as label parts and value cells, spans resolved."""
    views = []
    for grid_row, printed in zip(table.grid(), table.rows, strict=True):
        # Cells by identity (equal cells are still two cells): a spanning cell fills several
        # positions of the grid, and one from a row above is no value of this row.
        by_id = dict(zip(map(id, grid_row), grid_row, strict=True))
        by_id.pop(id(None), None)
        distinct = list(by_id.values())
        label_like = list(map(_label_like, [cell.text for cell in distinct]))
        # Label parts run up to the last label-like cell; value cells follow it.
        values_from = len(label_like) - label_like[::-1].index(True) if True in label_like else 0
        parts = [
            " ".join(cell.text.split()) for cell in compress(distinct[:values_from], label_like)
        ]
        starting = set(map(id, printed))
        cells = [cell for cell in distinct[values_from:] if id(cell) in starting]
        views.append(RowView(parts, [cell.text for cell in cells], table.page, cells))
    return views


def detect_version(
    tables: list[Table], year: int | None, section_texts: list[str] | tuple[str, ...] = ()
) -> str | None:
    """The template version printed, from labels only one version has; None if no table.

    Where no table was read (its text ran together), the table sections' text is searched.
    """
    texts = {normalize_label(cell.text) for table in tables for row in table.rows for cell in row}
    if not tables:
        texts = {normalize_label(text) for text in section_texts}
    texts.discard("")
    if not texts:
        return None
    # One string to search: a signal is in one of the texts iff it is in their join, since no
    # normalised label holds the separator.
    joined = "\0".join(texts)
    scores = {version: 0 for version in VERSIONS}
    for version in VERSIONS:
        scores[version] = sum(
            1 for signal in _version_signals(version) if len(signal) >= 4 and signal in joined
        )
    best = max(scores, key=lambda v: scores[v])
    if scores[best] > 0 and list(scores.values()).count(scores[best]) == 1:
        return best
    return "2021" if (year or 2021) >= 2021 else "2019"


@cache
def _version_signals(version: str) -> frozenset[str]:
    """Normalised labels that only template `version` prints."""
    other = template(next(v for v in VERSIONS if v != version))
    own = template(version)
    other_labels = {normalize_label(c.label) for c in other.active_disclosure.columns}
    signals = {normalize_label(c.label) for c in own.active_disclosure.columns} - other_labels
    signals |= {normalize_label(r.label) for r in own.applications.rows if r.only == version}
    signals |= {
        normalize_label(r.label)
        for r in own.active_disclosure.rows
        if r.code not in {x.code for x in other.active_disclosure.rows}
    }
    return frozenset(signals)


def best_row(label: str, rows: tuple[Row, ...]) -> tuple[float, Row | None]:
    best: tuple[float, Row | None] = (0.0, None)
    for row in rows:
        score = max(similarity(label, reference) for reference in row.labels())
        if score > best[0]:
            best = (score, row)
    return best


def _group_of(part: str, version: str) -> str | None:
    """The group of table 三 (version `version`) a label part names, or None."""
    return _group_code(normalize_label(part), version)


@lru_cache(maxsize=_TEXT_CACHE)
def _group_code(norm: str, version: str) -> str | None:
    # A label's group depends on its text alone; labels repeat from row to row and report to
    # report, so the match against every group label is made once per text.
    for code, label in template(version).applications.groups.items():
        if similarity(norm, normalize_label(label)) >= GROUP_MATCH:
            return code
    return None


def header_of(texts: list[str]) -> str | None:
    """The template table whose header a printed row (its cells' `texts`) is, or None.

    A header row holds header words of one table in at least two of its cells. Substring tests
    only: every row of every table of a page goes through here, however large the page.
    """
    cells = [normalize_label(text) for text in texts]
    best: tuple[int, str] | None = None
    for code in TABLE_CODES:
        found = {_longest_marker(cell, code) for cell in cells} - {""}
        if len(found) >= HEADER_WORDS_NEEDED and (best is None or len(found) > best[0]):
            best = (len(found), code)
    return best[1] if best else None


@lru_cache(maxsize=_TEXT_CACHE)
def _longest_marker(cell: str, code: str) -> str:
    # Each cell counts once, by the longest word it holds (本年处理决定数量, not also 处理决定数量).
    return max((m for m in header_markers(code) if m in cell), key=len, default="")


def _trim(values: list[str], wanted: int) -> list[str]:
    """Drop trailing blank cells beyond what the row needs (separator and layout noise)."""
    start, end = _trim_span(values, wanted)
    return values[start:end]


def _trim_span(values: list[str], wanted: int) -> tuple[int, int]:
    start, end = 0, len(values)
    while end - start > wanted and not values[end - 1].strip():
        end -= 1
    while end - start > wanted and not values[start].strip():
        start += 1
    return start, end


class _Mapper:
    def __init__(self, spec: Template) -> None:
        self.spec = spec
        self.out = Extraction()
        self.seen: set[tuple[str, str]] = set()
        # Per template table, each row code's place in print, and the last place read so far.
        self.positions = {
            code: {
                row: index
                for index, row in enumerate(
                    [group.code for group in spec.review_groups]
                    if code == "review_litigation"
                    else [row.code for row in spec.table(code).rows_for(spec.version)]
                )
            }
            for code in TABLE_CODES
        }
        self.read_up_to: dict[str, int] = {}
        # Rows of 三 whose label names no template row, to be placed once the table is read.
        self.held: list[tuple[RowView, list[str], HeldRow]] = []
        # Rows of 二 read by OCR whose label names no template row: each with the columns then
        # in force, how many facts of 二 were read before it, and the last template place read.
        self.held_disclosure: list[tuple[RowView, list[str], int, int]] = []
        self.group: str | None = None
        self.header_columns: list[str] = []
        self.application_columns = [c.code for c in spec.applications.columns]
        # The template rows of each table this version prints, filtered once, not once a row.
        self.rows = {code: spec.table(code).rows_for(spec.version) for code in TABLE_CODES}
        # What a header row of the applications table names: applicant columns (自然人 …).
        self.applicant_names = {
            normalize_label(c.label)
            for c in spec.applications.columns
            if c.code not in ("total", "other_org")
        }
        # A unit printed in the column header (本年收费金额（单位：万元）) applies to its cells.
        self.column_units = {
            ("active_disclosure", c.code): c.unit for c in spec.active_disclosure.columns if c.unit
        }

    def problem(self, code: str, message: str) -> None:
        self.out.problems.append(Problem(code, message))

    def emit(self, table: str, row: str, columns: list[str], view: RowView) -> None:
        values, cells = _value_cells(view, len(columns))
        if len(values) < len(columns):
            self.problem(
                "row_cells_missing",
                f"{table}/{row} ({view.leaf}) has {len(values)} value cells for "
                f"{len(columns)} columns: {values}; its cells were not mapped",
            )
            return
        if (table, row) in self.seen:
            self.problem("duplicate_row", f"{table}/{row} ({view.leaf}) is printed twice")
            return
        self.seen.add((table, row))
        position = self.positions[table].get(row)
        if position is not None:
            self.read_up_to[table] = max(self.read_up_to.get(table, -1), position)
        for fact, raw in zip(self._facts(table, row, columns, view), values, strict=True):
            if not _parse_value(raw).readable:
                self.problem("unreadable_cell", f"{table}/{row}/{fact.col}: {raw!r}")
            self.out.facts.append(fact)

    def _facts(self, table: str, row: str, columns: list[str], view: RowView) -> list[Fact]:
        """The row's facts, its values right-aligned to `columns` (as many as it has)."""
        facts = []
        values, cells = _value_cells(view, len(columns))
        for column, raw, source in zip(columns, values, cells, strict=False):
            cell = _parse_value(raw)
            unit = cell.unit or self.column_units.get((table, column))
            fact = Fact(table, row, column, cell.value, cell.raw, view.leaf, unit)
            if source is not None and source.confidence is not None:
                fact = replace(
                    fact,
                    confidence=source.confidence,
                    alternatives=source.alternatives,
                    ocr_lines=source.lines,
                    rereads=source.rereads,
                )
            facts.append(fact)
        return facts

    def hold(self, table: str, view: RowView, columns: list[str]) -> None:
        """A row of values whose label names no template row: placed at the end by the
        template's order and the printed sums (`placement.py`), else an extra row."""
        values, _ = _value_cells(view, len(columns))
        if len(values) < len(columns) or not any(v.strip() for v in values):
            self.extra(table, view, columns)
            return
        facts = self._facts(table, "", columns, view)
        at = len(self.out.facts)
        self.held.append(
            (view, columns, HeldRow(view.leaf, facts, at, self.read_up_to.get(table, -1)))
        )

    def place_held(self) -> None:
        """Place the held rows of table 三 (the one whose rows the printed sums tie together)."""
        if not self.held:
            return
        by_row = {id(held): (view, columns) for view, columns, held in self.held}
        printed = {id(held): index for index, (_, _, held) in enumerate(self.held)}
        order = list(self.positions["applications"])
        facts = [f for f in self.out.facts if f.table == "applications"]
        # Where each held row's facts go among the table's facts, not the whole extraction's.
        for _, _, held in self.held:
            held.at = sum(1 for f in self.out.facts[: held.at] if f.table == "applications")
        placements = place_rows(
            [held for _, _, held in self.held], facts, order, self.spec.version, self._resembles
        )
        # Inserted from the last printed: each keeps its place among the facts read by label.
        for placement in sorted(placements, key=lambda p: -printed[id(p.held)]):
            view, columns = by_row[id(placement.held)]
            table_facts = [f for f in self.out.facts if f.table == "applications"]
            anchor = (
                self.out.facts.index(table_facts[placement.held.at])
                if placement.held.at < len(table_facts)
                else len(self.out.facts)
            )
            start = len(self.out.facts)
            label = f"'{view.leaf}'" if view.parts else "with no label"
            if placement.confirmed and placement.code is not None:
                self.emit("applications", placement.code, columns, view)
                self.problem(
                    "row_placed_by_order",
                    f"applications/{placement.code}: the row {label} ({' | '.join(view.values)}) "
                    f"is placed by the template's row order; {placement.why}",
                )
            else:
                if placement.code is not None or not view.parts:
                    suggested = f"applications/{placement.code}" if placement.code else "no row"
                    self.problem(
                        "row_label_unmatched" if view.parts else "row_label_missing",
                        f"a row of table 三 {label} ({' | '.join(view.values)}): the template's "
                        f"order suggests {suggested}, but {placement.why}; not mapped",
                    )
                if view.parts:
                    self.extra("applications", view, columns)
            placed = self.out.facts[start:]
            del self.out.facts[start:]
            self.out.facts[anchor:anchor] = placed

    def _resembles(self, held: HeldRow, code: str) -> bool:
        """No label, an OCR reading (which can be far off), or a text label like the row's."""
        view, _, _ = next(entry for entry in self.held if entry[2] is held)
        if not view.parts or any(cell.confidence is not None for cell in view.cells):
            return True
        row = next(r for r in self.spec.applications.rows if r.code == code)
        return best_row(normalize_label(held.label), (row,))[0] >= PLACE_MATCH

    def saw_header(self, table: str) -> None:
        if table not in self.out.headers:
            self.out.headers.append(table)

    def _position(self, table: str, view: RowView) -> int | None:
        """Where the template prints the row this row's label names, or None for no template row."""
        leaf = normalize_label(view.leaf)
        if table == "review_litigation":
            scores = [
                (similarity(leaf, normalize_label(group.label)), index)
                for index, group in enumerate(self.spec.review_groups)
            ]
            score, index = max(scores)
            return index if score >= GROUP_MATCH else None
        score, row = best_row(leaf, self.rows[table])
        return self.positions[table][row.code] if row and score >= ROW_MATCH else None

    def follows_template(self, table: str, views: list[RowView], continuing: bool) -> bool:
        """Whether a table that prints no header reads as (the rest of) template table `table`.

        The template rows among its labelled rows come in the template's order, after the rows
        already read, and make at least half of them; a table with no labelled row (a value row
        alone) continues a table just read, or is table 四 printed as its one row of values
        (whose header row OCR may have misread).
        """
        labelled = [view for view in views if view.parts and view.values]
        if not labelled:
            return (continuing and any(view.values for view in views)) or (
                table == "review_litigation" and any(self._review_values(view) for view in views)
            )
        last = self.read_up_to.get(table, -1)
        matched = 0
        for view in labelled:
            position = self._position(table, view)
            if position is None:
                continue
            if position <= last:
                return False
            last = position
            matched += 1
        return matched > 0 and 2 * matched >= len(labelled)

    def _review_values(self, view: RowView) -> bool:
        """A row of nothing but table 四's values: every column of every group, no label."""
        width = len(self.spec.review_litigation.columns) * len(self.spec.review_groups)
        values = _trim(view.values, width)
        return not view.parts and len(values) == width and all(map(is_value_text, values))

    def extra(self, table: str, view: RowView, columns: list[str]) -> None:
        if not any(v.strip() for v in view.values):
            return
        if not view.parts:
            self.problem(
                "row_label_missing",
                f"a row of {table} with values and no label ({' | '.join(view.values)}); "
                "not mapped",
            )
            return
        code = f"extra.{hashlib.sha1(view.joined().encode()).hexdigest()[:8]}"
        if len(_trim(view.values, len(columns))) != len(columns):
            columns = [f"c{i + 1}" for i in range(len(view.values))]
        self.emit(table, code, columns, view)

    def active_disclosure(self, view: RowView) -> None:
        spec = self.spec.active_disclosure
        if not view.values or not any(v.strip() for v in view.values):
            matched = []
            for part in view.parts:
                norm = normalize_label(part)
                best = max(spec.columns, key=lambda c: similarity(norm, normalize_label(c.label)))
                if similarity(norm, normalize_label(best.label)) >= ROW_MATCH:
                    matched.append(best.code)
            if matched:
                self.header_columns = matched
            else:
                self._values_unread("active_disclosure", view, _holds_digit)
            return
        score, row = best_row(normalize_label(view.leaf), spec.rows)
        if row is None or score < ROW_MATCH:
            if any(cell.confidence is not None for cell in view.cells):
                read = sum(1 for f in self.out.facts if f.table == "active_disclosure")
                after = self.read_up_to.get("active_disclosure", -1)
                self.held_disclosure.append((view, list(self.header_columns), read, after))
                return
            self.extra("active_disclosure", view, self.header_columns)
            return
        self.emit("active_disclosure", row.code, list(row.columns), view)

    def place_held_disclosure(self) -> None:
        """Rows of table 二 whose OCR'd label names no template row (行政强制 read as 可以理制).

        Table 二 prints no sums, so only the order can place one: where it is the only such
        row between two rows read by their labels (or the table's ends) and the template
        prints exactly one row there that was not read, with as many value cells, it is that
        row (`row_placed_by_order`). Otherwise it stays an extra row, as a text label would."""
        table = "active_disclosure"
        position = self.positions[table]
        order = list(position)
        rows = {row.code: row for row in self.spec.active_disclosure.rows}
        facts = [f for f in self.out.facts if f.table == table]
        gaps: dict[tuple[int, int], int] = {}
        bounds = []
        for _, _, read, after in self.held_disclosure:
            before = next((position[f.row] for f in facts[read:] if f.row in position), len(order))
            bounds.append((after, before))
            gaps[(after, before)] = gaps.get((after, before), 0) + 1
        # From the last printed, so each one's place among the facts read before it holds.
        held = list(zip(self.held_disclosure, bounds, strict=True))
        for (view, columns, read, _), gap in reversed(held):
            start = len(self.out.facts)
            free = [c for c in order[gap[0] + 1 : gap[1]] if (table, c) not in self.seen]
            code = free[0] if gaps[gap] == 1 and len(free) == 1 else None
            wanted = len(rows[code].columns) if code else 0
            if code and len(_value_cells(view, wanted)[0]) == wanted:
                self.emit(table, code, list(rows[code].columns), view)
                self.problem(
                    "row_placed_by_order",
                    f"{table}/{code}: the row '{view.leaf}' ({' | '.join(view.values)}) is "
                    "placed by the template's row order alone (table 二 prints no sums): the "
                    "only row the template prints there that was not read",
                )
            else:
                self.extra(table, view, columns)
            placed = self.out.facts[start:]
            del self.out.facts[start:]
            # Before the first fact of 二 read after it, else after the last one read before it.
            table_facts = [f for f in self.out.facts if f.table == table]
            if read < len(table_facts):
                anchor = self.out.facts.index(table_facts[read])
            elif table_facts:
                anchor = self.out.facts.index(table_facts[-1]) + 1
            else:
                anchor = len(self.out.facts)
            self.out.facts[anchor:anchor] = placed

    def _values_unread(
        self, table: str, view: RowView, residue_is_value: Callable[[str], bool]
    ) -> None:
        # A row with no value cells that is no header: where a part names a template row and a
        # later part is what is left of its values (read as text: OCR noise run into digits, or
        # a figure read surely as a word), the row would vanish without a word. A label printed
        # with nothing after it (a cut-off text, a group heading) is not this.
        # The part most like a row names it: a sub-row's group label (不予公开) before its own
        # label is like other rows too (予以公开).
        named = [
            best_row(normalize_label(part), self.rows[table])
            for index, part in enumerate(view.parts)
            if any(residue_is_value(later) for later in view.parts[index + 1 :])
        ]
        score, row = max(named, key=lambda found: found[0], default=(0.0, None))
        if row is not None and score >= ROW_MATCH:
            self.problem(
                "row_values_unread",
                f"{table}/{row.code}: the row {' | '.join(view.parts)!r} has no cell that "
                "reads as a value; not mapped, not guessed",
            )

    def applications(self, view: RowView) -> None:
        groups = [g for g in (_group_of(p, self.spec.version) for p in view.parts) if g]
        if "小计" in view.joined() and not view.values:
            self._add_subtotal_column()
        if groups:
            self.group = groups[-1]
        if self._is_applicant_header(view):
            return
        if _header_only(view, len(self.application_columns)):
            self._values_unread("applications", view, _short_word)
            return
        leaf = normalize_label(view.leaf)
        candidates = self.rows["applications"]
        leaf_is_group = _group_of(view.leaf, self.spec.version)
        if leaf_is_group:
            candidates = tuple(r for r in candidates if r.code == leaf_is_group)
            self.group = None
        elif self.group and _numbered(view.leaf):
            candidates = tuple(r for r in candidates if r.group == self.group)
        else:
            candidates = tuple(r for r in candidates if r.group is None) or candidates
        score, row = best_row(leaf, candidates)
        if row is None or score < ROW_MATCH:
            # A numbered sub-row may have lost its group context (a page break, a dropped cell).
            score, row = best_row(leaf, self.rows["applications"])
        if row is None or score < ROW_MATCH:
            row = self._ocr_reading_of(view)
        if row is None:
            self.hold("applications", view, list(self.application_columns))
            return
        if row.group is None and not leaf_is_group:
            self.group = None
        self.emit("applications", row.code, self.application_columns, view)

    def _ocr_reading_of(self, view: RowView) -> Row | None:
        """The template row an OCR'd label misread past ROW_MATCH names, if the order and a
        clear margin say so (see OCR_ROW_MATCH); None for a text label."""
        if not any(cell.confidence is not None for cell in view.cells):
            return None
        label = normalize_label(view.leaf)
        readings = {label, _STRAY_NUMBERING.sub("", label)} - {""}
        rows = self.rows["applications"]
        scored = sorted(
            (
                (max(similarity(text, ref) for text in readings for ref in row.labels()), index)
                for index, row in enumerate(rows)
            ),
            reverse=True,
        )
        if len(scored) < 2 or not readings:
            return None
        (best, index), (second, _) = scored[0], scored[1]
        row = rows[index]
        if (
            best >= OCR_ROW_MATCH
            and best - second >= OCR_ROW_MARGIN
            and self.positions["applications"][row.code] > self.read_up_to.get("applications", -1)
            and ("applications", row.code) not in self.seen
        ):
            return row
        return None

    def _is_applicant_header(self, view: RowView) -> bool:
        """A header row names applicant columns (自然人, 商业企业 …), which no data row does."""
        return any(normalize_label(part) in self.applicant_names for part in view.parts)

    def _add_subtotal_column(self) -> None:
        for column, after in self.spec.optional_application_columns:
            if column.code not in self.application_columns:
                self.application_columns.insert(
                    self.application_columns.index(after) + 1, column.code
                )

    def review_litigation(self, view: RowView) -> None:
        columns = [c.code for c in self.spec.review_litigation.columns]
        groups = [g.code for g in self.spec.review_groups]
        width = len(columns) * len(groups)
        values = _trim(view.values, width)
        if len(values) == width and not view.parts:
            for index, group in enumerate(groups):
                chunk = slice(index * len(columns), (index + 1) * len(columns))
                start = _trim_span(view.values, width)[0]
                cells = view.cells[start:][chunk] if view.cells else []
                self.emit(
                    "review_litigation",
                    group,
                    columns,
                    RowView([group], values[chunk], view.page, cells),
                )
            return
        if view.parts and len(_trim(view.values, len(columns))) == len(columns):
            leaf = normalize_label(view.leaf)
            by_label = {normalize_label(g.label): g.code for g in self.spec.review_groups}
            best = max(by_label, key=lambda label: similarity(leaf, label))
            if similarity(leaf, best) >= GROUP_MATCH:
                self.emit("review_litigation", by_label[best], columns, view)


def _value_cells(view: RowView, wanted: int) -> tuple[list[str], list[Cell | None]]:
    """The row's value texts for `wanted` columns (trailing blanks trimmed, right-aligned), and
    the cells they were read from where known."""
    start, end = _trim_span(view.values, wanted)
    if end - start > wanted:
        # Extra cells come from label spans on the left: values are right-aligned.
        start = end - wanted
    values = view.values[start:end]
    cells: list[Cell | None] = list(view.cells[start:end]) or [None] * len(values)
    return values, cells


def _holds_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)


def _short_word(text: str) -> bool:
    """What is left of a figure OCR read surely as a word (11 as 日): as short as figures are."""
    return 0 < len(text.strip()) <= 4


def _header_only(view: RowView, width: int) -> bool:
    """A row with fewer cells than the table is wide and nothing in them is a header row."""
    return not any(v.strip() for v in view.values) and len(view.values) < width


def _numbered(label: str) -> bool:
    stripped = label.strip()
    return bool(stripped) and (stripped[0].isdigit() or stripped[0] in "（(") is True


def extract_facts(
    tables: list[Table],
    table_sections: list[str | None],
    version: str,
    headed: list[bool] | None = None,
) -> Extraction:
    """Facts of the three template tables found in `tables` (with the section each sits in).

    `headed` marks tables whose template header was found where they were found, outside their
    grid (a table recovered from run-together text): they are read as their section's table.
    """
    mapper = _Mapper(template(version))
    reading: str | None = None
    previous_section: str | None = None
    previous_read = False
    for index, (table, section) in enumerate(zip(tables, table_sections, strict=True)):
        # Headers from the printed cells, before the grid: a table that is no template table is
        # dropped without resolving its spans (a junk page holds thousands).
        heads = [header_of([cell.text for cell in row]) for row in table.rows]
        if index == 0 or section != previous_section:
            # The first table after a heading: it is the section's template table, if any.
            reading = section if section in TABLE_CODES else None
            previous_read = False
        previous_section = section
        if reading is None and not any(heads):
            previous_read = False
            continue
        views = row_views(table)
        if headed is not None and headed[index] and reading is not None:
            mapper.saw_header(reading)
        elif not any(heads) and not (
            reading is not None and mapper.follows_template(reading, views, previous_read)
        ):
            previous_read = False
            continue
        previous_read = True
        for view, head in zip(views, heads, strict=True):
            if head is not None:
                reading = head
                mapper.saw_header(head)
            if reading is not None:
                getattr(mapper, reading)(view)
    mapper.place_held()
    mapper.place_held_disclosure()
    return mapper.out
