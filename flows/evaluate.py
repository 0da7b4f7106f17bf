"""Score parsed facts against every gold file and report cell accuracy.

Two gold formats:

- `*.canon.json` (template 2019/2021): the documents it applies to (`applies_to`, names beside
  it) and the printed cells keyed `table/row/col`; `""` is a cell printed blank, which must
  parse to null. A gold file for another rendering of a report (a scan, a conversion) names the
  report's own gold in `facts_from` (a path relative to it) instead of copying it: one copy of
  each gold.
- `*.facts.json` (template 2008, the corpus format for free-form reports): the document (`file`)
  and a list of `facts`, each with a descriptive `key`, `value`, `unit`, the `sentence` it stands
  in and `where` (a prose section or the 统计表). A gold fact is found when a parsed fact of the
  same source (prose | table) has its value and evidence that overlaps the sentence; where the
  gold fact names its `code` (`table/row/col`), that code must match too. Each parsed fact
  answers one gold fact only. `not_facts` (code, value) are figures that must not be bound.

Who published each report is scored against `metadata.gold.json`, which maps file names beside it
to their `agency`, `year`, `level` and `region_code`; null says the document does not print it,
so the parser must say null too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache
from pathlib import Path

from nianbao.parsers.report import parse_file
from nianbao.parsers.result import Fact, ParseResult
from nianbao.parsers.traditional import to_simplified
from nianbao.parsers.values import clean, parse_value
from nianbao.schema.registry import FREEFORM_VERSION, normalize_label, sections

SECTION_CODES = tuple(spec.code for spec in sections())


@dataclass(slots=True)
class DocumentScore:
    path: str
    cells: int = 0
    right: int = 0
    wrong: list[str] = field(default_factory=list)
    metadata_errors: list[str] = field(default_factory=list)
    missing_sections: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.cells if self.cells else 1.0


def cell_matches(expected: str | float, fact: Fact | None) -> bool:
    if fact is None:
        return False
    if expected == "":
        return fact.value is None and clean(fact.raw) == ""
    if isinstance(expected, str):
        wanted = parse_value(expected)
        return clean(fact.raw) == clean(expected) or (
            wanted.value == fact.value and wanted.unit == fact.unit
        )
    return fact.value is not None and float(fact.value) == float(expected)


METADATA_FIELDS = ("agency", "year", "level", "region_code")


@cache
def _parsed(path: str) -> ParseResult:
    # A document scored for its cells and for its metadata is parsed once.
    return parse_file(path)


def score_document(path: Path, gold: dict) -> DocumentScore:
    parsed = _parsed(str(path))
    facts = {f.key: f for f in parsed.facts}
    score = DocumentScore(str(path))
    for key, expected in gold["facts"].items():
        score.cells += 1
        fact = facts.get(key)
        if cell_matches(expected, fact):
            score.right += 1
        else:
            got = "missing" if fact is None else f"{fact.value!r} (raw {fact.raw!r})"
            score.wrong.append(f"{key}: expected {expected!r}, got {got}")
    for name in ("agency", "year", "template"):
        if name in gold and str(gold[name]) != str(getattr(parsed, name)):
            score.metadata_errors.append(
                f"{name}: expected {gold[name]!r}, got {getattr(parsed, name)!r}"
            )
    found = {s.code for s in parsed.sections}
    score.missing_sections = [c for c in SECTION_CODES if c not in found]
    return score


# Evidence overlaps a gold sentence when one holds the other or they share this much of the shorter.
EVIDENCE_OVERLAP = 0.6


def _overlaps(sentence: str, evidence: str) -> bool:
    a, b = "".join(sentence.split()), "".join((evidence or "").split())
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match()
    return match.size >= EVIDENCE_OVERLAP * min(len(a), len(b))


def _gold_source(where: str) -> str:
    return "table" if "统计表" in where or "table" in where.lower() else "prose"


def score_facts_document(path: Path, gold: dict) -> DocumentScore:
    """Score a free-form (template 2008) report against its `*.facts.json`."""
    parsed = _parsed(str(path))
    score = DocumentScore(str(path))
    used: set[int] = set()
    # Evidence of a report in traditional characters is shown converted, as the parser read it.
    converted = any(p.code == "traditional_characters" for p in parsed.problems)
    for expected in gold["facts"]:
        score.cells += 1
        source = _gold_source(expected.get("where", ""))
        key = expected["key"]
        sentence = expected.get("sentence", "")
        if converted:
            sentence = to_simplified(sentence)
        candidates = []
        for index, fact in enumerate(parsed.facts):
            if index in used or fact.source != source or fact.value is None:
                continue
            if float(fact.value) != float(expected["value"]):
                continue
            if expected.get("code"):
                if fact.key != expected["code"]:
                    continue
            elif source == "table" and fact.col != ("cumulative" if "累计" in key else "year"):
                continue
            if not _overlaps(sentence, fact.evidence or ""):
                continue
            label = normalize_label(fact.label or "")
            closeness = SequenceMatcher(None, normalize_label(key), label).ratio()
            candidates.append((closeness, index))
        if candidates:
            used.add(max(candidates)[1])
            score.right += 1
        else:
            wanted = expected.get("code") or source
            score.wrong.append(f"{key}: expected {expected['value']!r} ({wanted}), not found")
    # A figure the gold says is not one (窗口 applications, tax relief): binding it is an error.
    for wrong in gold.get("not_facts", []):
        score.cells += 1
        bound = [
            f
            for f in parsed.facts
            if f.key == wrong["code"]
            and f.value is not None
            and float(f.value) == float(wrong["value"])
        ]
        if bound:
            score.wrong.append(f"{wrong['code']}: {wrong['value']!r} bound, but {wrong['why']}")
        else:
            score.right += 1
    if "year" in gold and str(gold["year"]) != str(parsed.year):
        score.metadata_errors.append(f"year: expected {gold['year']!r}, got {parsed.year!r}")
    if parsed.template != FREEFORM_VERSION:
        score.metadata_errors.append(
            f"template: expected {FREEFORM_VERSION!r}, got {parsed.template!r}"
        )
    return score


def read_gold(path: Path) -> dict:
    """A `*.canon.json`, with the year, template and facts of the gold it names in `facts_from`."""
    gold = json.loads(path.read_text("utf-8"))
    source = gold.pop("facts_from", None)
    if source is None:
        return gold
    return {**read_gold(path.parent / source), **gold}


def gold_documents(roots: list[Path]) -> list[tuple[Path, dict]]:
    pairs = []
    for root in roots:
        for gold_path in sorted(root.rglob("*.canon.json")):
            gold = read_gold(gold_path)
            for name in gold.get("applies_to", []):
                document = gold_path.parent / name
                if document.exists():
                    pairs.append((document, gold))
        for gold_path in sorted(root.rglob("*.facts.json")):
            gold = json.loads(gold_path.read_text("utf-8"))
            document = gold_path.parent / gold["file"]
            if document.exists():
                pairs.append((document, gold))
    return pairs


def evaluate(roots: list[Path]) -> list[DocumentScore]:
    return [
        score_facts_document(path, gold) if "file" in gold else score_document(path, gold)
        for path, gold in gold_documents(roots)
    ]


@dataclass(slots=True)
class MetadataScore:
    path: str
    right: dict[str, bool]
    wrong: list[str]


def evaluate_metadata(roots: list[Path]) -> list[MetadataScore]:
    """Agency, year, level and region code of every document a `metadata.gold.json` names."""
    scores = []
    for root in roots:
        for gold_path in sorted(root.rglob("metadata.gold.json")):
            gold = json.loads(gold_path.read_text("utf-8"))
            for name, expected in gold["documents"].items():
                path = gold_path.parent / name
                if not path.exists():
                    continue
                parsed = _parsed(str(path))
                right = {f: getattr(parsed, f) == expected.get(f) for f in METADATA_FIELDS}
                wrong = [
                    f"{f}: expected {expected.get(f)!r}, got {getattr(parsed, f)!r}"
                    for f, ok in right.items()
                    if not ok
                ]
                scores.append(MetadataScore(str(path), right, wrong))
    return scores


def metadata_summary(scores: list[MetadataScore]) -> str:
    """One line: how many documents have each field right."""
    counts = ", ".join(
        f"{field} {sum(s.right[field] for s in scores)}/{len(scores)}" for field in METADATA_FIELDS
    )
    return f"who published it over {len(scores)} documents: {counts}"
