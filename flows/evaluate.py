"""Score parsed facts against every gold file (`*.canon.json`) and report cell accuracy.

A gold file lists the documents it applies to (`applies_to`, names beside it) and the printed
cells keyed `table/row/col`; `""` is a cell printed blank, which must parse to null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


def score_document(path: Path, gold: dict) -> DocumentScore:
    parsed = parse_file(str(path))
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
