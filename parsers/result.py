"""What the parse stage hands on: one document's result as typed, immutable data.

The parser builds a `ParseResult` (its facts, checks, problems and sections), the worker pool
pickles it across the process boundary, and the loader, the evaluation and the CLI's summary read
its fields. JSON exists only at the edges: `ParseResult.to_json()` is the `nianbao parse --json`
object of docs/template.md, key for key and in the same order, and `ParseResult.from_json()`
reads such an object back (a line of `parse --json` output, a test's hand-written report).

This module imports nothing of nianbao: every stage may use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .problems import MESSAGES

Json = dict[str, Any]
Value = int | float | None


@dataclass(frozen=True, slots=True)
class Problem:
    """A failure (the document yielded no report) or a finding beside a report that loads."""

    code: str
    message: str
    # The page a finding is about, where it is about one (a PDF page read by OCR).
    page: str | None = None

    @classmethod
    def of(cls, code: str) -> Problem:
        """The problem with its one standing message (problems.MESSAGES)."""
        return cls(code, MESSAGES[code])

    def to_json(self) -> Json:
        if self.page is None:
            return {"code": self.code, "message": self.message}
        return {"code": self.code, "page": self.page, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Problem:
        return cls(data["code"], data.get("message"), data.get("page"))


@dataclass(frozen=True, slots=True)
class Fact:
    """One cell of a template table (or, template 2008, one figure of prose or a 统计表)."""

    table: str
    row: str
    col: str
    value: Value
    raw: str
    label: str
    unit: str | None = None
    # Values read by OCR: the cell's lowest character confidence, and other readings of it.
    confidence: float | None = None
    alternatives: tuple[str, ...] = ()
    # A reading replaced by `ocr_check` (the only one that made the printed sums hold).
    ocr_reading: str | None = None
    # The keys of the cell line images it was read from (`Document.ocr_lines`); not printed.
    ocr_lines: tuple[int, ...] = ()
    # Readings of its cell's image read again another way (glyphs set apart, bolder, …) that
    # contradict `raw`: the value is unsure however sure the recogniser was; not printed.
    rereads: tuple[str, ...] = ()
    # Template 2008 only: prose | table, the sentence or printed 统计表 row, and its section.
    source: str | None = None
    evidence: str | None = None
    section: str | None = None

    @property
    def key(self) -> str:
        """table/row/col, as gold files name a cell."""
        return f"{self.table}/{self.row}/{self.col}"

    def to_json(self) -> Json:
        fact: Json = {
            "table": self.table,
            "row": self.row,
            "col": self.col,
            "value": self.value,
            "raw": self.raw,
            "label": self.label,
            "unit": self.unit,
        }
        if self.confidence is not None:
            fact["confidence"] = round(self.confidence, 3)
        if self.ocr_reading is not None:
            fact["ocr_reading"] = self.ocr_reading
        if self.source is not None:
            fact.update(source=self.source, evidence=self.evidence, section=self.section)
        return fact

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fact:
        return cls(
            data["table"],
            data["row"],
            data["col"],
            data.get("value"),
            data.get("raw"),
            data.get("label"),
            data.get("unit"),
            confidence=data.get("confidence"),
            ocr_reading=data.get("ocr_reading"),
            source=data.get("source"),
            evidence=data.get("evidence"),
            section=data.get("section"),
        )


@dataclass(frozen=True, slots=True)
class Check:
    """One rule's outcome for one scope (a column, a row or a group) of one report."""

    rule: str
    scope: str | None
    ok: bool
    detail: str | None

    def to_json(self) -> Json:
        return {"rule": self.rule, "scope": self.scope, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        return cls(data["rule"], data.get("scope"), data["ok"], data.get("detail"))


@dataclass(frozen=True, slots=True)
class SectionText:
    """A section of the report as printed: its code, its heading and its text."""

    code: str
    heading: str | None
    text: str

    def to_json(self) -> Json:
        return {"code": self.code, "heading": self.heading, "text": self.text}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SectionText:
        return cls(data["code"], data.get("heading"), data["text"])


class RegionNames(NamedTuple):
    """The names of a 行政区划 code's place; None for the levels below the body's own."""

    province: str | None
    city: str | None
    county: str | None


@dataclass(frozen=True, slots=True)
class ParseResult:
    """One document, parsed: the `parse --json` object as typed data (docs/template.md).

    `status` is `parsed`, `failed` or `not_a_report`; a failed document's first problem says why.
    """

    source: str
    sha256: str
    format: str
    bytes: int
    pages: int | None = None
    status: str = "failed"
    agency: str | None = None
    agency_source: str | None = None
    agency_canonical: str | None = None
    agency_kind: str | None = None
    level: str | None = None
    region_code: str | None = None
    region: str | None = None
    region_names: RegionNames | None = None
    year: int | None = None
    template: str | None = None
    parser_version: str | None = None
    sections: tuple[SectionText, ...] = ()
    facts: tuple[Fact, ...] = ()
    checks: tuple[Check, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    @classmethod
    def failed(
        cls, source: str, data: bytes, fmt: str, parser_version: str, *problems: Problem
    ) -> ParseResult:
        """A document that yielded nothing but its problems."""
        return cls(
            source,
            hashlib.sha256(data).hexdigest(),
            fmt,
            len(data),
            parser_version=parser_version,
            problems=problems,
        )

    @property
    def problem(self) -> Problem | None:
        """The first problem: for a failed document, why it failed."""
        return self.problems[0] if self.problems else None

    def failed_rules(self) -> tuple[str, ...]:
        return tuple(check.rule for check in self.checks if not check.ok)

    def to_json(self) -> Json:
        """The `nianbao parse --json` object, its keys in the contract's order."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "format": self.format,
            "bytes": self.bytes,
            "pages": self.pages,
            "status": self.status,
            "agency": self.agency,
            "agency_source": self.agency_source,
            "agency_canonical": self.agency_canonical,
            "agency_kind": self.agency_kind,
            "level": self.level,
            "region_code": self.region_code,
            "region": self.region,
            "region_names": self.region_names._asdict() if self.region_names else None,
            "year": self.year,
            "template": self.template,
            "parser_version": self.parser_version,
            "sections": [section.to_json() for section in self.sections],
            "facts": [fact.to_json() for fact in self.facts],
            "checks": [check.to_json() for check in self.checks],
            "problems": [problem.to_json() for problem in self.problems],
        }

    def json_line(self) -> str:
        """The line `nianbao parse --json` writes for this document (JSON Lines)."""
        return json.dumps(self.to_json(), ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParseResult:
        """Read a `parse --json` object back; keys an older parser did not write are None."""
        names = data.get("region_names")
        return cls(
            data["source"],
            data["sha256"],
            data["format"],
            data["bytes"],
            pages=data.get("pages"),
            status=data["status"],
            agency=data.get("agency"),
            agency_source=data.get("agency_source"),
            agency_canonical=data.get("agency_canonical"),
            agency_kind=data.get("agency_kind"),
            level=data.get("level"),
            region_code=data.get("region_code"),
            region=data.get("region"),
            region_names=RegionNames(**names) if names else None,
            year=data.get("year"),
            template=data.get("template"),
            parser_version=data.get("parser_version"),
            sections=tuple(SectionText.from_json(s) for s in data.get("sections", ())),
            facts=tuple(Fact.from_json(f) for f in data.get("facts", ())),
            checks=tuple(Check.from_json(c) for c in data.get("checks", ())),
            problems=tuple(Problem.from_json(p) for p in data.get("problems", ())),
        )
