"""The template registry: rows, columns and sections of every template version, as data.

The JSON files in `templates/` are the only place that knows the template; matching and checks
read them through this module. A local variant is a data change (an alias), not code.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache, lru_cache, partial
from importlib import resources

from .numbering import LABEL_NUMBERING

VERSIONS = ("2019", "2021")
# Label matching repeats itself: every row of every report is scored against the same registry
# labels, and reports print the same labels. The caches keep the most recent pairs, so a long
# run's memory stays bounded (a pair costs a few hundred bytes).
_LABEL_CACHE = 1 << 16

_NOISE = re.compile(
    r"[\s\u3000\xa0“”\"'‘’「」《》<>（）()【】\[\]、，,。.．:：;；/／\-—－_·…!！?？|]+"
)


def strip_numbering(text: str) -> str:
    """Remove every leading numbering token (a label may carry two: 三、（一）)."""
    previous = None
    while previous != text:
        previous = text
        text = LABEL_NUMBERING.sub("", text, count=1)
    return text


# Characters NFKC keeps as they are and that never reorder or compose with a neighbour (ccc 0, no
# decomposition, in no canonical composition): CJK ideographs, digits, spaces and line breaks,
# and the CJK punctuation NFKC leaves alone. NFKC of a text is NFKC of the runs between them,
# with them unchanged; tests/test_sections.py checks every one against the Unicode data.
NFKC_INERT = "\u4e00-\u9fff0-9 \n\u3001\u3002\u201c\u201d\u300a\u300b\u300c\u300d"
_NOT_INERT = re.compile(f"[^{NFKC_INERT}]+")
# The runs are mostly full-width punctuation and Latin words, which repeat.
_nfkc_run = lru_cache(maxsize=1 << 12)(partial(unicodedata.normalize, "NFKC"))


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, ~4x faster on Chinese prose: only the runs of
    characters that NFKC may change are normalised (the same runs recur across a text)."""
    return _NOT_INERT.sub(_nfkc_match, text)


def _nfkc_match(match: re.Match[str]) -> str:
    return _nfkc_run(match.group())


@lru_cache(maxsize=_LABEL_CACHE)
def normalize_label(text: str) -> str:
    """Label text reduced to its characters: no numbering, punctuation, quotes or spaces."""
    return _NOISE.sub("", strip_numbering(_NOISE.sub(" ", text).strip()) if text else "")


@lru_cache(maxsize=_LABEL_CACHE)
def similarity(label: str, reference: str) -> float:
    """How well a normalised printed label matches a normalised registry label (0..1).

    Character-level: Chinese labels carry meaning per character and typos drop or swap single
    characters (其他法律行政止公开), so a sequence ratio is robust where word tokens are not. A
    printed label that starts with the reference (部分公开 followed by an instruction) is a match.
    """
    if not label or not reference:
        return 0.0
    if label == reference:
        return 1.0
    if len(reference) >= 2 and label.startswith(reference):
        return 0.95
    return SequenceMatcher(None, label, reference, autojunk=False).ratio()


@lru_cache(maxsize=_LABEL_CACHE)
def _normalized_labels(label: str, aliases: tuple[str, ...]) -> tuple[str, ...]:
    # A row's labels are read for every printed row matched against it.
    return tuple(normalize_label(x) for x in (label, *aliases))


@dataclass(frozen=True, slots=True)
class Column:
    code: str
    label: str
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    code: str
    label: str
    aliases: tuple[str, ...] = ()
    group: str | None = None
    columns: tuple[str, ...] = ()
    only: str | None = None

    def labels(self) -> tuple[str, ...]:
        return _normalized_labels(self.label, self.aliases)


@dataclass(frozen=True, slots=True)
class TableSpec:
    code: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...] = ()
    groups: dict[str, str] = field(default_factory=dict)
    # Words a header row prints besides the column labels (信息内容, 申请人情况).
    header_words: tuple[str, ...] = ()

    def rows_for(self, version: str) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.only in (None, version))


@dataclass(frozen=True, slots=True)
class Template:
    version: str
    active_disclosure: TableSpec
    applications: TableSpec
    review_litigation: TableSpec
    review_groups: tuple[Column, ...]
    optional_application_columns: tuple[tuple[Column, str], ...]
    outcome_patterns: tuple[str, ...]

    def table(self, code: str) -> TableSpec:
        return getattr(self, code)

    def outcome_rows(self) -> list[str]:
        """Row codes of 三 that add up to （七）总计 (rule R2), for this version."""
        codes = [r.code for r in self.applications.rows_for(self.version)]
        picked = []
        for code in codes:
            for pattern in self.outcome_patterns:
                if code == pattern or (pattern.endswith(".*") and code.startswith(pattern[:-1])):
                    picked.append(code)
                    break
        return picked


def _read(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath("templates", name).read_text("utf-8"))


def _columns(items: list[dict]) -> tuple[Column, ...]:
    return tuple(Column(c["code"], c["label"], c.get("unit")) for c in items)


def _rows(items: list[dict]) -> tuple[Row, ...]:
    return tuple(
        Row(
            code=r["code"],
            label=r["label"],
            aliases=tuple(r.get("aliases", ())),
            group=r.get("group"),
            columns=tuple(r.get("columns", ())),
            only=r.get("only"),
        )
        for r in items
    )


@cache
def template(version: str) -> Template:
    if version not in VERSIONS:
        raise KeyError(f"unknown template version {version!r}; known: {', '.join(VERSIONS)}")
    apps = _read("applications.json")
    review = _read("review_litigation.json")
    active = _read(f"active_disclosure_{version}.json")
    return Template(
        version=version,
        active_disclosure=TableSpec(
            "active_disclosure",
            _columns(active["columns"]),
            _rows(active["rows"]),
            header_words=tuple(active.get("header_words", ())),
        ),
        applications=TableSpec(
            "applications",
            _columns(apps["columns"]),
            _rows(apps["rows"]),
            {g["code"]: g["label"] for g in apps["groups"]},
            tuple(apps.get("header_words", ())),
        ),
        review_litigation=TableSpec(
            "review_litigation",
            _columns(review["columns"]),
            header_words=tuple(review.get("header_words", ())),
        ),
        review_groups=_columns(review["groups_in_print_order"]),
        optional_application_columns=tuple(
            (Column(c["code"], c["label"]), c["after"]) for c in apps["optional_columns"]
        ),
        outcome_patterns=tuple(apps["outcome_rows"]),
    )


TABLE_CODES = ("active_disclosure", "applications", "review_litigation")


@cache
def header_markers(code: str) -> frozenset[str]:
    """Normalised words that only a header row of template table `code` prints, in either version.

    Its column labels and header words, less every word a data row prints too (其他 and 总计 are
    columns of 三 and also its rows; 行政复议 heads 四 and is a row where 四 is printed as rows):
    a page that scatters row labels about holds none of these.
    """
    specs = [template(version) for version in VERSIONS]
    printed_in_rows = {
        normalize_label(label)
        for spec in specs
        for table in TABLE_CODES
        for label in (
            *(text for row in spec.table(table).rows for text in (row.label, *row.aliases)),
            *spec.table(table).groups.values(),
        )
    } | {normalize_label(group.label) for spec in specs for group in spec.review_groups}
    words = {
        normalize_label(word)
        for spec in specs
        for word in (
            *(column.label for column in spec.table(code).columns),
            *spec.table(code).header_words,
        )
    }
    return frozenset(words - printed_in_rows - {""})


@dataclass(frozen=True, slots=True)
class SectionSpec:
    code: str
    number: str
    labels: tuple[str, ...]


@cache
def sections() -> tuple[SectionSpec, ...]:
    data = _read("sections.json")
    return tuple(SectionSpec(s["code"], s["number"], tuple(s["labels"])) for s in data["sections"])


# The pre-2019 reports (2008 条例 era): prose and a local 统计表, no national tables.
FREEFORM_VERSION = "2008"


@dataclass(frozen=True, slots=True)
class VocabularyRow:
    """One canonical pre-2019 figure: how a 统计表 labels it and how prose states it."""

    code: str
    label: str
    unit: str
    units: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    section: str | None = None
    narrows: str | None = None
    needs: re.Pattern[str] | None = None
    prose: tuple[re.Pattern[str], ...] = ()
    negations: tuple[re.Pattern[str], ...] = ()

    def labels(self) -> tuple[str, ...]:
        return _normalized_labels(self.label, self.aliases)


@dataclass(frozen=True, slots=True)
class FreeformTemplate:
    version: str
    rows: tuple[VocabularyRow, ...]
    # (column code, header pattern) in print order: 本年度, 历年累计
    columns: tuple[tuple[str, re.Pattern[str]], ...]
    # (section code, heading words), most specific first
    sections: tuple[tuple[str, tuple[str, ...]], ...]
    generic_subject: re.Pattern[str]
    # Words before a prose figure that make it a running total (到年底累计, 历年)
    cumulative_subject: re.Pattern[str]

    def row(self, code: str) -> VocabularyRow:
        return next(r for r in self.rows if r.code == code)


@cache
def freeform_template() -> FreeformTemplate:
    """The vocabulary of template 2008 (docs/template-2008.md), from templates/freeform_2008.json."""
    data = _read("freeform_2008.json")
    rows = tuple(
        VocabularyRow(
            code=r["code"],
            label=r["label"],
            unit=r["unit"],
            units=tuple(r["units"]),
            aliases=tuple(r.get("aliases", ())),
            section=r.get("section"),
            narrows=r.get("narrows"),
            needs=re.compile(r["needs"]) if "needs" in r else None,
            prose=tuple(re.compile(p) for p in r.get("prose", ())),
            negations=tuple(re.compile(p) for p in r.get("negations", ())),
        )
        for r in data["rows"]
    )
    return FreeformTemplate(
        version=FREEFORM_VERSION,
        rows=rows,
        columns=tuple((c["code"], re.compile(c["header"])) for c in data["columns"]),
        sections=tuple((s["code"], tuple(s["words"])) for s in data["sections"]),
        generic_subject=re.compile(data["generic_subjects"]),
        cumulative_subject=re.compile(data["cumulative_subject"]),
    )


def prints_header(code: str | None, text: str) -> bool:
    """Whether `text` prints a header word (`header_markers`) of template table `code`, or of
    any template table when `code` is None: where a table starts, in text that lost its grid."""
    # Not through the cache: a whole section's text is seen once.
    words = normalize_label.__wrapped__(text)
    codes = TABLE_CODES if code is None else (code,)
    return any(marker in words for table in codes for marker in header_markers(table))
