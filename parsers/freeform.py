"""Pre-2019 free-form reports -> facts of template 2008: the 统计表 and the prose around it.

Before the national tables of 2019 a report was prose (`2012年主动公开政府信息1913条`,
`未收到有关政府信息公开的申请`) with, often, a small local 统计表 (指标名称 | 计量单位 | 本年度 |
历年累计). Both are read into the vocabulary of `schema/templates/freeform_2008.json`:

- the 统计表 as a table (`table` "statistics"): rows matched by label, local rows kept as
  `extra.*` with their printed label, columns `year` and `cumulative`, units from 计量单位. Cells
  a crawler ran together (`主动公开信息数条18535395`) are split only where one split alone
  satisfies what a 统计表 guarantees (no leading zeros, this year ≤ cumulative, a 其中 row ≤ its
  parent) and, failing that, the figure the prose states for the same row; else `fused_cells`.
- the prose (`table` "prose"): each number with a unit is bound by the words that end right
  before it in its clause; a clause that binds two codes is reported (`ambiguous_binding`), a
  negation (`未收到…申请`) is a 0. A code stated twice with different figures keeps the plain
  statement (`2012年主动公开…`) and the qualified ones (`各乡镇主动公开…`) as `extra.*`.

Every fact carries `source` (prose | table), `evidence` (its sentence or printed row) and `section`.
Where prose and table give different figures both are kept and `prose_table_disagree` says so.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache

from nianbao.schema.numbering import FREEFORM_HEADING, FREEFORM_SUBHEADING
from nianbao.schema.registry import (
    FreeformTemplate,
    VocabularyRow,
    freeform_template,
    normalize_label,
    similarity,
)

from .blocks import Document, Paragraph, Table
from .result import Fact, Problem
from .tables import row_views
from .values import parse_value

# A unit printed right after a count. Longer units first: 人次 before 次, 万元 before 元.
_UNITS = ("万元", "人次", "元", "条", "件", "次", "项", "篇", "个", "份", "起", "宗")
_UNIT = "|".join(_UNITS)
_COUNT = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(" + _UNIT + ")")
_SENTENCE_END = re.compile(r"[。！？!?]")
# A heading ends before a space, bracket, punctuation or digit, or after 情况/概述/措施.
_HEADING_END = re.compile(r"(?=[\s（(。，,：:\d])|(?<=情况)|(?<=概述)|(?<=措施)")
MAX_HEADING_CHARS = 40
# Read right after a number: `…主动公开的1853条政府信息中` refers back to a figure, and
# `…1397条，占73%` states the figure as a share of a total.
_QUOTES = re.compile(r"[“”\"'‘’「」『』]")
_SHARE = re.compile(r"^\s*[，,]?\s*占(?:总数|全部|总量)?的?(\d+(?:\.\d+)?)\s*[%％]")
# Shares that add up to this (73% + 27%) are the parts of one whole.
WHOLE_PERCENT = 100.0
SHARE_TOLERANCE = 1.5
_BACK_REFERENCE = re.compile(r"^(?:的)?(?:政府)?(?:信息|文件)?中")
# The 统计表: its header, and each row as label, 计量单位 and the digits of its cells.
_TABLE_HEADER = re.compile(r"指\s*标\s*名\s*称\s*计\s*量\s*单\s*位")
_TABLE_CELLS = re.compile(r"(" + _UNIT + r")\s*(\d[\d .]*)")
_ROW_NUMBER = re.compile(r"^\s*(?:其\s*中\s*[:：]?)?\s*(?:\d{1,2}\s*[、.．]|[（(]\d{1,2}[)）])?\s*")
_CHILD_MARK = re.compile(r"^\s*(?:其\s*中|\d{1,2}\s*[、.．]|[（(]\d{1,2}[)）])")
MAX_TABLE_LABEL = 40
LABEL_MATCH = 0.8
# Words 统计表 labels add or drop freely: 主动公开信息数 = 主动公开文件数 = 主动公开政府信息数.
_LABEL_FILLER = re.compile(r"政府信息|信息|政府|文件|的|总数|数量|件数|数")
# What may stand between two things counted together: 和 / 及 / 、 / 或, 提起, 被申请.
_COORDINATION = re.compile(r"\s*(?:和|及|与|、|或|以及)\s*(?:被|提起|申请)*\s*")
_CELL = re.compile(r"0|[1-9]\d*(?:\.\d{1,2})?|0\.\d{1,2}")


@dataclass(slots=True)
class _Mention:
    """A figure the prose states for a code."""

    code: str
    col: str
    value: int | float
    raw: str
    unit: str | None
    label: str
    sentence: str
    section: str
    plain: bool  # no subject but the report's own (2012年, 我区, 共…)
    back_reference: bool
    share: float | None  # 占N% after the figure
    negated: bool
    position: int


@dataclass(slots=True)
class _TableRow:
    label: str
    unit: str | None
    cells: list[str] | None  # printed cells, or None where they ran together
    run: str
    child: bool
    evidence: str


@dataclass(slots=True)
class FreeformExtraction:
    facts: list[Fact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def extract_freeform(document: Document) -> FreeformExtraction:
    """Facts of template 2008 from a report with no national tables."""
    vocabulary = freeform_template()
    text = "\n".join(p.text for p in document.blocks if isinstance(p, Paragraph))
    extraction = FreeformExtraction()
    table_span = _table_span(text)
    prose_text = text if table_span is None else text[: table_span[0]] + text[table_span[1] :]
    heads = _prose_facts(prose_text, vocabulary, extraction)
    rows, columns = [], []
    if table_span is not None:
        columns = _header_columns(text[table_span[0] : table_span[2]], vocabulary)
        rows = _text_rows(text[table_span[2] : table_span[1]])
    for table in document.blocks:
        if isinstance(table, Table) and not rows:
            rows, columns = _block_rows(table, vocabulary)
    if rows:
        _table_facts(rows, columns, vocabulary, heads, extraction)
    _report_disagreements(extraction)
    return extraction


# ---- prose -------------------------------------------------------------------------------


def _headings(text: str, vocabulary: FreeformTemplate) -> list[tuple[int, int, str]]:
    """(start, end, section code) of each heading, in order.

    Top-level headings (三、…) set the section; a sub-heading (（三）依申请公开政府信息收费情况)
    sets it only where its words name a section, and otherwise keeps its parent's.
    """
    found = []
    parent = "preamble"
    marks = sorted(
        [(m, True) for m in FREEFORM_HEADING.finditer(text)]
        + [(m, False) for m in FREEFORM_SUBHEADING.finditer(text)],
        key=lambda pair: pair[0].start(),
    )
    for match, top in marks:
        rest = text[match.end() : match.end() + MAX_HEADING_CHARS]
        end = _HEADING_END.search(rest, 1)
        heading = rest[: end.start() if end else len(rest)]
        if not heading.strip():
            continue
        code = next(
            (code for code, words in vocabulary.sections if any(w in heading for w in words)),
            "other" if top else parent,
        )
        if top:
            parent = code
        found.append((match.start(), match.end() + len(heading), code))
    return found


def _section_at(headings: list[tuple[int, int, str]], position: int) -> str:
    section = "preamble"
    for start, _, code in headings:
        if start > position:
            break
        section = code
    return section


def _sentences(text: str) -> list[tuple[int, str]]:
    """(offset, text) of each sentence, ended by 。 or a line break."""
    out, start = [], 0
    for match in re.finditer(r"[。！？!?]|\n", text):
        out.append((start, text[start : match.end()]))
        start = match.end()
    if start < len(text):
        out.append((start, text[start:]))
    return out


def _prose_facts(
    text: str, vocabulary: FreeformTemplate, extraction: FreeformExtraction
) -> dict[str, int | float]:
    """Bind prose figures; return the figure each code is stated as (its head)."""
    headings = _headings(text, vocabulary)
    mentions: list[_Mention] = []
    for offset, sentence in _sentences(text):
        # A heading inside the sentence is not part of what it says.
        inner = [end for start, end, _ in headings if offset <= start < offset + len(sentence)]
        cut = max(inner) - offset if inner else 0
        shown = sentence[cut:].strip()
        clause_start = cut
        for clause in re.split(r"(?<=[，,；;：:])", sentence[cut:]):
            position = offset + clause_start
            clause_start += len(clause)
            section = _section_at(headings, position)
            mentions += _bind_clause(clause, section, shown, position, vocabulary, extraction)
    return _choose_heads(mentions, vocabulary, extraction)


def _bind_clause(
    clause: str,
    section: str,
    sentence: str,
    position: int,
    vocabulary: FreeformTemplate,
    extraction: FreeformExtraction,
) -> list[_Mention]:
    """The figures one clause states: each number by the words right before it, else a negation."""
    counts = list(_COUNT.finditer(clause))
    if not counts:
        return _negations(clause, section, sentence, position, vocabulary)
    found: list[_Mention] = []
    previous_end = 0
    for count in counts:
        # Quotes around a category name (其中“同意公开”的25件) are not part of its words, nor
        # the spaces a converter sets a figure apart by (共计  120  条).
        context = _QUOTES.sub("", clause[previous_end : count.start()]).rstrip()
        previous_end = count.end()
        cued = _cued_row(context, count, section, sentence, vocabulary, extraction)
        if cued is None:
            continue
        code, cue = cued
        subject = context[: cue.start()]
        value = parse_value(count[1]).value
        if value is None:
            continue
        found.append(
            _Mention(
                code=code,
                col="cumulative" if vocabulary.cumulative_subject.search(subject) else "year",
                value=value,
                raw=count.group(),
                unit=count[2],
                label=context.strip(" ，,；;：:") or vocabulary.row(code).label,
                sentence=sentence,
                section=section,
                plain=bool(vocabulary.generic_subject.fullmatch(subject)),
                back_reference=bool(_BACK_REFERENCE.match(clause[count.end() :])),
                share=_share(sentence, clause, count.end()),
                negated=False,
                position=position + count.start(),
            )
        )
    return found


def _cued_row(
    context: str,
    count: re.Match[str],
    section: str,
    sentence: str,
    vocabulary: FreeformTemplate,
    extraction: FreeformExtraction,
) -> tuple[str, re.Match[str]] | None:
    """The one row whose words come right before a number, with its cue; none if none or several.

    Several rows cued at once is a finding (`ambiguous_binding`), never a guess.
    """
    unit = count[2]
    matched: dict[str, re.Match[str]] = {}
    for row in vocabulary.rows:
        if unit not in row.units:
            continue
        if row.needs and section != row.section and not row.needs.search(sentence):
            continue
        cue = next((m for m in (p.search(context) for p in row.prose) if m), None)
        if cue:
            matched[row.code] = cue
    narrowed = {vocabulary.row(code).narrows for code in matched}
    codes = [code for code in matched if code not in narrowed]
    if len(codes) == 1:
        codes += _coordinated(context, matched[codes[0]], codes[0], unit, vocabulary)
    if len(codes) > 1:
        extraction.problems.append(
            Problem(
                "ambiguous_binding",
                f"prose “{sentence}”: {count.group()} could be "
                + " or ".join(codes)
                + "; not bound",
            )
        )
        return None
    return (codes[0], matched[codes[0]]) if codes else None


def _negations(
    clause: str, section: str, sentence: str, position: int, vocabulary: FreeformTemplate
) -> list[_Mention]:
    """A clause with no figure that says a row had none (未发生…, 没有…): a 0 for each such row."""
    found: list[_Mention] = []
    for row in vocabulary.rows:
        if row.section != section and not re.search(r"信息公开|依申请", sentence):
            continue
        negation = next((m for m in (p.search(clause) for p in row.negations) if m), None)
        if negation:
            found.append(
                _Mention(
                    code=row.code,
                    col="year",
                    value=0,
                    raw=negation.group(),
                    unit=row.unit,
                    label=row.label,
                    sentence=sentence,
                    section=section,
                    plain=True,
                    back_reference=False,
                    share=None,
                    negated=True,
                    position=position + negation.start(),
                )
            )
    return found


def _coordinated(
    context: str, cue: re.Match[str], code: str, unit: str, vocabulary: FreeformTemplate
) -> list[str]:
    """Codes named together with `code` before one number: `行政复议和提起行政诉讼共3件`."""
    others = []
    for row in vocabulary.rows:
        if row.code == code or unit not in row.units or row.code == vocabulary.row(code).narrows:
            continue
        for pattern in _unanchored(row):
            for match in pattern.finditer(context, 0, cue.start() + 1):
                if _COORDINATION.fullmatch(context[match.end() : cue.start()]):
                    others.append(row.code)
    return list(dict.fromkeys(others))


@cache
def _unanchored(row: VocabularyRow) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p.pattern.removesuffix("$")) for p in row.prose)


def _choose_heads(
    mentions: list[_Mention], vocabulary: FreeformTemplate, extraction: FreeformExtraction
) -> dict[str, int | float]:
    """The figure of each code: its plain statement in its own section, else the first one.

    The other figures of the code are kept as `extra.*` (`各乡镇主动公开…534条`); repeats of
    the head's figure are dropped.
    """
    heads: dict[str, int | float] = {}
    by_code: dict[tuple[str, str], list[_Mention]] = {}
    for mention in mentions:
        by_code.setdefault((mention.code, mention.col), []).append(mention)
    for (code, col), group in by_code.items():
        row = vocabulary.row(code)
        ranked = sorted(
            group,
            key=lambda m: (
                m.back_reference,
                m.negated,
                row.section is not None and m.section != row.section,
                not m.plain,
                m.position,
            ),
        )
        head = ranked[0]
        if col == "year":
            heads[code] = head.value
        extraction.facts.append(_prose_fact(head, code, row.label))
        _check_parts(head, group, extraction)
        seen = {head.value}
        for other in sorted(ranked[1:], key=lambda m: m.position):
            if other.value in seen:
                continue
            seen.add(other.value)
            extraction.facts.append(
                _prose_fact(other, _extra_code(code + col + other.label), other.label)
            )
    return heads


def _share(sentence: str, clause: str, end: int) -> float | None:
    """The 占N% right after a figure (it may sit in the next clause: `534条，占27%`)."""
    start = sentence.find(clause)
    after = sentence[start + end :] if start >= 0 else clause[end:]
    match = _SHARE.match(after)
    return float(match[1]) if match else None


def _check_parts(head: _Mention, group: list[_Mention], extraction: FreeformExtraction) -> None:
    """Figures after the head, each a share of it (`占73%`, `占27%`), must add up to it."""
    parts: list[_Mention] = []
    for mention in sorted(group, key=lambda m: m.position):
        if mention.position <= head.position or mention.back_reference:
            continue
        if mention.share is None:
            break
        parts.append(mention)
    shares = sum(m.share or 0 for m in parts)
    if len(parts) < 2 or abs(shares - WHOLE_PERCENT) > SHARE_TOLERANCE:
        return
    total = sum(float(m.value) for m in parts)
    if total != float(head.value):
        shown = " + ".join(m.raw for m in parts)
        extraction.problems.append(
            Problem(
                "prose_parts_disagree",
                f"{head.code}: the prose gives {head.raw} (“{head.sentence}”) and "
                f"its parts {shown} (shares adding up to {shares:g}%), which make {total:g}",
            )
        )


def _prose_fact(mention: _Mention, row: str, label: str) -> Fact:
    return Fact(
        table="prose",
        row=row,
        col=mention.col,
        value=mention.value,
        raw=mention.raw,
        label=label,
        unit=mention.unit,
        source="prose",
        evidence=mention.sentence,
        section=mention.section,
    )


def _extra_code(label: str) -> str:
    return f"extra.{hashlib.sha1(normalize_label(label).encode()).hexdigest()[:8]}"


# ---- the 统计表 ----------------------------------------------------------------------------


def _table_span(text: str) -> tuple[int, int, int] | None:
    """(start, end, end of header) of a 统计表 printed as text, or None."""
    header = _TABLE_HEADER.search(text)
    if header is None:
        return None
    # The column headers follow 计量单位; rows start after the last of them.
    body_start = header.end()
    for _, pattern in freeform_template().columns:
        column = re.compile(r"\s*(?:" + pattern.pattern + ")").match(text, body_start)
        if column:
            body_start = column.end()
    end = body_start
    for cells in _TABLE_CELLS.finditer(text, body_start):
        label = text[end : cells.start()]
        if len(label) > MAX_TABLE_LABEL or _SENTENCE_END.search(label):
            break
        end = cells.end()
    if end == body_start:
        return None
    return header.start(), end, body_start


def _header_columns(header: str, vocabulary: FreeformTemplate) -> list[str]:
    found = [
        (match.start(), code)
        for code, pattern in vocabulary.columns
        for match in [pattern.search(header)]
        if match
    ]
    return [code for _, code in sorted(found)] or ["year"]


def _text_rows(body: str) -> list[_TableRow]:
    rows: list[_TableRow] = []
    label_start = 0
    for cells in _TABLE_CELLS.finditer(body):
        run = cells[2].rstrip(" .")
        # The next row's number glued to this row's digits: `…2949819162、政府公报…`
        if re.match(r"[、.．]\s*[^\d\s]", body[cells.start(2) + len(run) :]) and run:
            run = run[:-1].rstrip()
        run_end = cells.start(2) + len(run)
        next_label_start = run_end
        raw_label = body[label_start : cells.start()]
        label = _ROW_NUMBER.sub("", raw_label).strip()
        spaced = run.split()
        rows.append(
            _TableRow(
                label=label,
                unit=cells[1],
                cells=spaced if len(spaced) > 1 else None,
                run=run,
                child=bool(_CHILD_MARK.match(raw_label)),
                evidence=" ".join(body[label_start:run_end].split()),
            )
        )
        label_start = next_label_start
    return rows


def _block_rows(table: Table, vocabulary: FreeformTemplate) -> tuple[list[_TableRow], list[str]]:
    """Rows of a 统计表 read as a real table (HTML, DOCX, PDF)."""
    views = row_views(table)
    header = next(
        (i for i, v in enumerate(views) if _TABLE_HEADER.search("".join(v.parts + v.values))),
        None,
    )
    if header is None:
        return [], []
    columns = _header_columns(" ".join(views[header].parts + views[header].values), vocabulary)
    rows = []
    for view in views[header + 1 :]:
        parts = list(view.parts)
        unit = parts.pop() if parts and parts[-1].strip() in _UNITS else None
        if not parts or not view.values:
            continue
        raw_label = " ".join(parts)
        cells = [c.strip() for c in view.values]
        rows.append(
            _TableRow(
                label=_ROW_NUMBER.sub("", raw_label).strip(),
                unit=unit,
                cells=cells if len(cells) > 1 else None,
                run=cells[0] if len(cells) == 1 else "",
                child=bool(_CHILD_MARK.match(raw_label)),
                evidence=" ".join([raw_label, unit or "", *cells]).replace("  ", " "),
            )
        )
    return rows, columns


def match_row(label: str, vocabulary: FreeformTemplate) -> VocabularyRow | None:
    """The vocabulary row a printed 统计表 label names; None for a local row.

    Labels are compared without the words every row carries (政府信息, 数, 总数 …), so
    `受理政府信息依申请公开总数` meets `受理依申请公开信息总数`: first exactly, then by a
    similarity that one row must clearly win.
    """
    text = _label_key(_ROW_NUMBER.sub("", label))
    if not text:
        return None
    keys = [
        (row, {_label_key(ref) for ref in (row.label, *row.aliases)}) for row in vocabulary.rows
    ]
    exact = [row for row, refs in keys if text in refs]
    if exact:
        return exact[0]
    scored = sorted(
        ((max(similarity(text, ref) for ref in refs), row) for row, refs in keys),
        key=lambda pair: -pair[0],
    )
    best, runner_up = scored[0], scored[1]
    if best[0] >= LABEL_MATCH and best[0] > runner_up[0]:
        return best[1]
    return None


def _label_key(label: str) -> str:
    return _LABEL_FILLER.sub("", normalize_label(label))


def _splits(run: str, parts: int) -> list[list[str]]:
    """Every way to cut a run of digits into `parts` printed cells."""
    if parts == 1:
        return [[run]] if _CELL.fullmatch(run) else []
    out = []
    for cut in range(1, len(run)):
        head = run[:cut]
        if _CELL.fullmatch(head):
            out += [[head, *rest] for rest in _splits(run[cut:], parts - 1)]
    return out


def _decode(
    run: str,
    columns: list[str],
    parent: list[float] | None,
    stated: int | float | None,
) -> tuple[list[str] | None, str]:
    """Cells of a run-together row, if one split alone fits; else None and why."""
    candidates = _splits(run.replace(" ", ""), len(columns))
    if "cumulative" in columns and "year" in columns:
        year, total = columns.index("year"), columns.index("cumulative")
        candidates = [c for c in candidates if float(c[year]) <= float(c[total])]
    if parent is not None:
        candidates = [
            c for c in candidates if all(float(v) <= p for v, p in zip(c, parent, strict=True))
        ]
    if len(candidates) > 1 and stated is not None and "year" in columns:
        pinned = [c for c in candidates if float(c[columns.index("year")]) == float(stated)]
        if len(pinned) == 1:
            return pinned[0], "the figure the prose states"
    if len(candidates) == 1:
        return candidates[0], "this year ≤ cumulative and 其中 rows ≤ their parent"
    return None, f"{len(candidates)} splits fit"


def _table_facts(
    rows: list[_TableRow],
    columns: list[str],
    vocabulary: FreeformTemplate,
    heads: dict[str, int | float],
    extraction: FreeformExtraction,
) -> None:
    parent: list[float] | None = None
    decoded = 0
    for row in rows:
        matched = match_row(row.label, vocabulary)
        code = matched.code if matched else _extra_code(row.label)
        cells = row.cells
        if cells is not None and len(cells) != len(columns):
            cells = None
        if cells is None:
            cells, why = _decode(row.run, columns, parent if row.child else None, heads.get(code))
            if cells is None:
                extraction.problems.append(
                    Problem(
                        "fused_cells",
                        f"统计表: the cells of “{row.label}” run together as "
                        f"“{row.run}” and cannot be split into {len(columns)} cells "
                        f"unambiguously ({why})",
                    )
                )
                if not row.child:
                    parent = None
                continue
            if len(columns) > 1:
                decoded += 1
        values = [parse_value(c) for c in cells]
        if not row.child:
            parent = [float(v.value or 0) for v in values]
        for column, cell, value in zip(columns, cells, values, strict=True):
            extraction.facts.append(
                Fact(
                    table="statistics",
                    row=code,
                    col=column,
                    value=value.value,
                    raw=cell,
                    label=row.label,
                    unit=row.unit or (matched.unit if matched else None),
                    source="table",
                    evidence=row.evidence,
                    section="statistics",
                )
            )
    if decoded:
        extraction.problems.append(
            Problem(
                "fused_cells_decoded",
                f"统计表: {decoded} rows split from run-together digits where one split alone fits",
            )
        )


def _report_disagreements(extraction: FreeformExtraction) -> None:
    """Prose and 统计表 stating different figures for one code: both stay, this says so."""
    table = {(f.row, f.col): f for f in extraction.facts if f.source == "table"}
    for fact in extraction.facts:
        other = table.get((fact.row, fact.col))
        if fact.source != "prose" or other is None or other.value is None:
            continue
        if float(other.value) != float(fact.value or 0):
            extraction.problems.append(
                Problem(
                    "prose_table_disagree",
                    f"{fact.row} ({fact.col}): the prose says {fact.raw} "
                    f"(“{fact.evidence}”), the 统计表 says {other.raw}{other.unit or ''} "
                    f"(“{other.evidence}”)",
                )
            )
