"""One document's bytes -> the `parse --json` object of the spec.

This is the parse stage's public entry point: a pure function of the bytes (and a name for
messages), returning plain data that crosses process boundaries and feeds the loader.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NamedTuple

from nianbao.schema.checks import run_checks
from nianbao.schema.registry import FREEFORM_VERSION

from .blocks import Document, ParseError, Table
from .detect import sniff_format
from .evidence import weigh
from .flattened import recover_table
from .freeform import extract_freeform
from .metadata import Metadata, SourceHints, extract_metadata
from .result import Fact, ParseResult, Problem, RegionNames, SectionText
from .sections import Section, find_sections
from .tables import TABLE_CODES, detect_version, extract_facts
from .traditional import to_simplified_document

PARSER_VERSION = "0.2.0"  # 0.2: who published it; pre-2019 figures; facts only from template tables
# The national tables began with the 2019 reports; earlier ones are read as template 2008.
FIRST_TABLE_YEAR = 2019


def _reader(fmt: str) -> Callable[[bytes], Document]:
    # Imported on demand: a text parse should not pay for pdfplumber or python-docx.
    if fmt == "pdf":
        from .pdf import read_pdf

        return read_pdf
    if fmt == "docx":
        from .docx import read_docx

        return read_docx
    if fmt == "html":
        from .html import read_html

        return read_html
    if fmt == "txt":
        from .text import read_text

        return read_text
    if fmt == "md":
        from .markdown import read_markdown

        return read_markdown
    if fmt in ("doc", "wps"):
        from .legacy import read_legacy_word

        return read_legacy_word
    if fmt == "odt":
        from .legacy import read_open_document

        return read_open_document
    raise ParseError(
        "unknown_format",
        f"not a format nianbao reads ({fmt}): expected PDF, DOCX, ODT, DOC/WPS, HTML or text",
    )


def empty_result(source: str, data: bytes, fmt: str, *problems: Problem) -> ParseResult:
    """The result of a document that yielded nothing but its problems (status failed)."""
    return ParseResult.failed(source, data, fmt, PARSER_VERSION, *problems)


def parse_document(
    document: Document,
    result: ParseResult,
    hints: SourceHints | None = None,
    problems: list[Problem] | None = None,
) -> ParseResult:
    """`result` (a document's identity: source, sha256, format) filled from its blocks.

    Problems are gathered in `problems`, so that a caller whose parse stops half way still has
    those found before it stopped.
    """
    problems = [] if problems is None else problems
    problems.extend(document.problems)
    converted = to_simplified_document(document)
    if converted:
        problems.append(Problem.of("traditional_characters"))
    found, block_sections = find_sections(document.blocks)
    meta, opening = _who_published(document, found, block_sections, hints, result.source)
    tables = _table_facts(document, found, block_sections, meta.year)
    version, facts = tables.version, tables.facts
    evidence = weigh(
        ([document.title] if document.title else []) + opening,
        hints,
        [s.code for s in found],
        tables.headers,
    )
    if evidence.is_report:
        problems.extend(tables.findings)
    else:
        # Cells of a page that is not a report are not facts, and nothing about them is a finding.
        facts = []
        problems.insert(0, Problem("not_a_report", evidence.shortfall()))
    has_sections = len(found) > 1
    pre_2019 = meta.year is None or meta.year < FIRST_TABLE_YEAR
    if (
        evidence.is_report
        and pre_2019
        and has_sections
        and all(f.row.startswith("extra.") for f in facts)
    ):
        # No row of the national tables: a free-form report (before 2019), whose figures are
        # in its prose and, often, a local 统计表 that the table reader only saw as extra rows.
        freeform = extract_freeform(document)
        problems.extend(freeform.problems)
        if freeform.facts:
            facts = freeform.facts
            version = FREEFORM_VERSION
    if facts:
        template = version
    elif evidence.is_report and has_sections:
        template = "free_form"  # section headings and no template table
    else:
        template = None
    checks = run_checks(facts, version if facts else None, "\n".join(s.text for s in found))
    if evidence.is_report:
        problems.extend(meta.problems)  # who published it matters only for a report
    return replace(
        result,
        pages=document.pages,
        status="parsed" if evidence.is_report else "not_a_report",
        agency=meta.agency,
        **_agency_fields(meta, hints),
        year=meta.year,
        template=template,
        sections=tuple(
            SectionText(s.code, s.heading, s.text)
            for s in found
            if s.code != "preamble" or s.paragraphs
        ),
        facts=tuple(facts),
        checks=tuple(checks),
        problems=tuple(problems),
    )


def _who_published(
    document: Document,
    found: list[Section],
    block_sections: list[str | None],
    hints: SourceHints | None,
    source: str,
) -> tuple[Metadata, list[str]]:
    """Who published the report and its year, from every place it says them; and its opening
    lines (the preamble's, else the first paragraphs), which also weigh as evidence."""
    preamble = next(s for s in found if s.code == "preamble")
    opening = preamble.paragraphs[:8] or [p.text for p in document.paragraphs()[:8]]
    overview = next((s for s in found if s.code == "overview"), None)
    # A web page's information table (索引号 | 发布机构 …) stands above the first heading.
    header_rows = [
        " | ".join(cell.text for cell in row)
        for block, section in zip(document.blocks, block_sections, strict=True)
        if isinstance(block, Table) and section == "preamble"
        for row in block.rows
    ]
    meta = extract_metadata(
        opening,
        document.title,
        hints,
        overview=overview.paragraphs[:3] if overview else (),
        closing=[p.text for p in document.paragraphs()[-8:]],
        author=document.author,
        source=source,
        page_header=header_rows,
    )
    return meta, opening


class _TableFacts(NamedTuple):
    version: str | None  # the template version the tables print; None: no template table
    facts: list[Fact]
    headers: list[str]  # template tables recognised by a printed header
    findings: list[Problem]


def _table_facts(
    document: Document, found: list[Section], block_sections: list[str | None], year: int | None
) -> _TableFacts:
    """Facts of the template tables, those printed as run-together text too, with OCR'd digits
    checked against the printed sums."""
    placed = [
        (block, section)
        for block, section in zip(document.blocks, block_sections, strict=True)
        if isinstance(block, Table)
    ]
    tables = [block for block, _ in placed]
    table_sections = [section for _, section in placed]
    table_texts = [s.text for s in found if s.code in TABLE_CODES]
    version = detect_version(tables, year, table_texts)
    if not version:
        return _TableFacts(None, [], [], [])
    findings: list[Problem] = []
    more_tables, more_sections = _recover_flattened(found, table_sections, version, findings)
    extraction = extract_facts(
        tables + more_tables,
        table_sections + more_sections,
        version,
        headed=[False] * len(tables) + [True] * len(more_tables),
    )
    findings.extend(extraction.problems)
    if any(f.confidence is not None for f in extraction.facts):
        from .ocr import reread
        from .ocr_check import verify_digits

        def reread_lines(keys: list[tuple[int, ...]]) -> list[tuple[str, ...]]:
            return reread([document.ocr_lines[line] for (line,) in keys])

        reread_of = reread_lines if document.ocr_lines else None
        findings.extend(verify_digits(extraction.facts, version, reread_of))
    return _TableFacts(version, extraction.facts, extraction.headers, findings)


def _agency_fields(meta: Metadata, hints: SourceHints | None) -> dict[str, Any]:
    """Who published it, for `parse --json`. `region` keeps its meaning (the portal's region,
    as harvested); the resolved place is `region_code` with its names in `region_names`."""
    agency = meta.resolved
    fields: dict[str, Any] = {"region": hints.region if hints else None}
    if agency is not None:
        fields.update(
            agency_source=meta.agency_source,
            agency_canonical=agency.canonical,
            agency_kind=agency.kind,
            level=agency.level,
            region_code=agency.region_code,
            region_names=RegionNames(**agency.region_names()) if agency.region_code else None,
        )
    return fields


def _recover_flattened(
    found: list[Section],
    table_sections: list[str | None],
    version: str,
    problems: list[Problem],
) -> tuple[list[Table], list[str | None]]:
    """Tables printed as run-together text, in the table sections that hold no real table."""
    tables: list[Table] = []
    sections: list[str | None] = []
    for section in found:
        if section.code not in TABLE_CODES or section.code in table_sections:
            continue
        table, found_problems = recover_table(section.code, section.text, version)
        problems.extend(found_problems)
        if table is not None:
            tables.append(table)
            sections.append(section.code)
    return tables, sections


def parse_bytes(
    data: bytes, source: str = "<bytes>", hints: SourceHints | None = None
) -> ParseResult:
    """Parse one published report. Never raises for a bad file: problems say what went wrong.

    `hints` say what is known of the file from where it was found (a harvest's listing entry).
    """
    fmt = sniff_format(data, source)
    if not data:
        return empty_result(source, data, fmt, Problem.of("empty_file"))
    problems: list[Problem] = []
    try:
        with _collection_paused():
            document = _reader(fmt)(data)
            result = parse_document(document, empty_result(source, data, fmt), hints, problems)
            # Freed while collection is still paused: the collection that comes due once it
            # resumes then walks the result alone, not also every block and cell of the document.
            del document
        return result
    except ParseError as error:
        problem = Problem(error.code, error.message)
    except MemoryError:
        problem = Problem("too_large", "the document needs more memory than the parser may use")
    except Exception as error:  # noqa: BLE001 - one bad file must never stop a batch
        problem = Problem(
            "parser_error",
            f"nianbao failed on this file ({type(error).__name__}: {error}); please report it with the file",
        )
    return empty_result(source, data, fmt, *problems, problem)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection during one document's parse.

    A parse allocates tens of thousands of small objects (characters, cells, label matches) that
    reference counting frees; the collections their allocation triggers find no garbage but walk
    the parse's live objects again and again, and now and then the whole long-lived heap
    (registry, jieba's dictionary, libraries): ~15% of a PDF's parse, ~12% of an HTML one.
    Cycles a parse leaves (python-docx's package and its parts) are collected once it is done.
    """
    if not gc.isenabled():  # the caller turned it off; leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_file(path: str) -> ParseResult:
    with open(path, "rb") as handle:
        return parse_bytes(handle.read(), path)
