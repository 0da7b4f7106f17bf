"""Score parsed facts against every gold file (`*.canon.json`) and report cell accuracy; score
who published each report against `metadata.gold.json`.

A gold file lists the documents it applies to (`applies_to`, names beside it) and the printed
cells keyed `table/row/col`; `""` is a cell printed blank, which must parse to null.
A `metadata.gold.json` maps file names beside it to their `agency`, `year`, `level` and
`region_code`; null says the document does not print it, so the parser must say null too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from nianbao.parsers.report import parse_file
from nianbao.parsers.values import clean, parse_value
from nianbao.schema.registry import sections

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


def cell_matches(expected, fact: dict | None) -> bool:
    if fact is None:
        return False
    if expected == "":
        return fact["value"] is None and clean(fact["raw"]) == ""
    if isinstance(expected, str):
        wanted = parse_value(expected)
        return clean(fact["raw"]) == clean(expected) or (
            wanted.value == fact["value"] and wanted.unit == fact.get("unit")
        )
    return fact["value"] is not None and float(fact["value"]) == float(expected)


METADATA_FIELDS = ("agency", "year", "level", "region_code")


@cache
def _parsed(path: str) -> dict:
    # A document scored for its cells and for its metadata is parsed once.
    return parse_file(path)


def score_document(path: Path, gold: dict) -> DocumentScore:
    parsed = _parsed(str(path))
    facts = {f"{f['table']}/{f['row']}/{f['col']}": f for f in parsed["facts"]}
    score = DocumentScore(str(path))
    for key, expected in gold["facts"].items():
        score.cells += 1
        fact = facts.get(key)
        if cell_matches(expected, fact):
            score.right += 1
        else:
            got = "missing" if fact is None else f"{fact['value']!r} (raw {fact['raw']!r})"
            score.wrong.append(f"{key}: expected {expected!r}, got {got}")
    for name in ("agency", "year", "template"):
        if name in gold and str(gold[name]) != str(parsed.get(name)):
            score.metadata_errors.append(
                f"{name}: expected {gold[name]!r}, got {parsed.get(name)!r}"
            )
    found = {s["code"] for s in parsed["sections"]}
    score.missing_sections = [c for c in SECTION_CODES if c not in found]
    return score


def gold_documents(roots: list[Path]) -> list[tuple[Path, dict]]:
    pairs = []
    for root in roots:
        for gold_path in sorted(root.rglob("*.canon.json")):
            gold = json.loads(gold_path.read_text("utf-8"))
            for name in gold.get("applies_to", []):
                document = gold_path.parent / name
                if document.exists():
                    pairs.append((document, gold))
    return pairs


def evaluate(roots: list[Path]) -> list[DocumentScore]:
    return [score_document(path, gold) for path, gold in gold_documents(roots)]


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
                right = {f: parsed.get(f) == expected.get(f) for f in METADATA_FIELDS}
                wrong = [
                    f"{f}: expected {expected.get(f)!r}, got {parsed.get(f)!r}"
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
