"""Idempotent load of one parsed document (a `ParseResult`) into the warehouse.

A document is known by its sha256. Loading it again with the same parser version changes no
report data; a new parser version replaces the document's rows. Each document loads in one
transaction, so a run killed half way leaves nothing half loaded and the next run redoes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nianbao.parsers.agency import resolve_agency
from nianbao.parsers.result import ParseResult
from nianbao.parsers.values import is_value_text
from nianbao.schema.agencies import agency_id_for
from nianbao.schema.models import Base, Check, Document, Fact, Finding, Report, Section, utcnow


class LoadOutcome(StrEnum):
    LOADED = "loaded"
    UNCHANGED = "unchanged"
    RELOADED = "reloaded"  # known document, new parser version: its rows were replaced
    FAILED = "failed"  # the parser's failure is recorded on the documents row
    NOT_A_REPORT = "not_a_report"


# parse --json status -> documents.status
_DOCUMENT_STATUS = {"parsed": "loaded", "failed": "failed", "not_a_report": "not_a_report"}


class KnownDocument(NamedTuple):
    """What the warehouse holds of a document: enough for a rerun to skip it or report it."""

    parser_version: str | None
    status: str
    problem_code: str | None
    problem_message: str | None


def known_documents(engine: Engine, sha256s: Iterable[str]) -> dict[str, KnownDocument]:
    """The stored documents among `sha256s`, by sha256.

    Lets a run skip parsing the files the warehouse already holds with the current parser, and
    still report those of them that failed.
    """
    wanted = list(sha256s)
    known: dict[str, KnownDocument] = {}
    columns = (
        Document.sha256,
        Document.parser_version,
        Document.status,
        Document.problem_code,
        Document.problem_message,
    )
    with engine.connect() as conn:
        for chunk in _chunks(wanted):
            query = select(*columns).where(Document.sha256.in_(chunk))
            known.update((row[0], KnownDocument(*row[1:])) for row in conn.execute(query))
    return known


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    # Chunks keep the IN lists under SQLite's limit on bound parameters.
    for start in range(0, len(values), size):
        yield values[start : start + size]


def report_ids_of(engine: Engine, sha256s: Iterable[str]) -> list[int]:
    """The ids of the reports of these documents (those that loaded as reports)."""
    ids: list[int] = []
    with engine.connect() as conn:
        for chunk in _chunks(list(sha256s)):
            ids += conn.execute(
                select(Report.id).where(Report.document_sha256.in_(chunk))
            ).scalars()
    return ids


class _DocumentRace(Exception):
    """Another worker inserted the same document between our read and our insert."""


def load_document(
    engine: Engine,
    parsed: ParseResult | Mapping[str, Any],
    raw_path: str | None = None,
    run_id: int | None = None,
) -> LoadOutcome:
    """Load one parsed document in one transaction.

    `parsed` is the parser's `ParseResult`, or the JSON object `nianbao parse --json` writes
    for it (read through `ParseResult.from_json`). `run_id` (a `runs` row, see `schema.runs`)
    is recorded on the document and report rows this load writes; an unchanged document keeps
    the run that loaded it.
    """
    if not isinstance(parsed, ParseResult):
        parsed = ParseResult.from_json(parsed)
    if parsed.status not in _DOCUMENT_STATUS:
        raise ValueError(f"unknown parse status {parsed.status!r} for {parsed.source}")
    try:
        return _load(engine, parsed, raw_path, run_id, first_attempt=True)
    except _DocumentRace:
        # The other worker has committed by now (PostgreSQL reports the unique violation only
        # then), so a second pass sees its row and decides unchanged or reloaded.
        return _load(engine, parsed, raw_path, run_id, first_attempt=False)


def cell_state(value: object, raw: str | None) -> str:
    """value, blank (a printed blank or dash: parsers/values.py's null markers) or unreadable."""
    if value is not None:
        return "value"
    return "blank" if is_value_text(raw or "") else "unreadable"


def _load(
    engine: Engine,
    parsed: ParseResult,
    raw_path: str | None,
    run_id: int | None,
    *,
    first_attempt: bool,
) -> LoadOutcome:
    now = utcnow()
    with Session(engine) as session, session.begin():
        document = session.scalars(
            select(Document).where(Document.sha256 == parsed.sha256).with_for_update()
        ).one_or_none()
        if document is not None and document.parser_version == parsed.parser_version:
            document.last_seen_at = now
            document.raw_path = document.raw_path or raw_path
            return LoadOutcome.UNCHANGED

        problem = parsed.problem
        fields = {
            "format": parsed.format,
            "bytes": parsed.bytes,
            "pages": parsed.pages,
            "status": _DOCUMENT_STATUS[parsed.status],
            "problem_code": problem.code if problem else None,
            "problem_message": problem.message if problem else None,
            "parser_version": parsed.parser_version,
            "last_seen_at": now,
            "run_id": run_id,
        }
        if document is None:
            session.add(
                Document(
                    sha256=parsed.sha256,
                    source=parsed.source,
                    raw_path=raw_path,
                    first_seen_at=now,
                    **fields,
                )
            )
            try:
                session.flush()
            except IntegrityError as exc:
                if first_attempt:
                    raise _DocumentRace from exc
                raise
        else:
            for name, value in fields.items():
                setattr(document, name, value)
            document.raw_path = document.raw_path or raw_path
            _drop_report(session, document.sha256)

        if parsed.status != "parsed":
            return LoadOutcome(parsed.status)
        _insert_report(session, parsed, now, run_id)
        return LoadOutcome.LOADED if document is None else LoadOutcome.RELOADED


def _drop_report(session: Session, sha256: str) -> None:
    """Delete the report an older parser version made of this document, if any."""
    old = session.execute(
        select(Report.id, Report.agency, Report.agency_id, Report.year).where(
            Report.document_sha256 == sha256
        )
    ).one_or_none()
    if old is not None:
        # ON DELETE CASCADE takes its sections, facts and checks.
        session.execute(delete(Report).where(Report.id == old.id))
        _settle_current(session, old.agency, old.agency_id, old.year)


def _insert_report(
    session: Session, parsed: ParseResult, now: datetime, run_id: int | None
) -> None:
    agency, year = parsed.agency, parsed.year
    # Resolved again from the printed name and the region the parse found (or was hinted):
    # the same call as the 0003 back-fill, and output of older parser versions loads too.
    resolved = resolve_agency(agency, year, parsed.region) if agency else None
    agency_id = agency_id_for(session.connection(), resolved, agency) if resolved else None
    report = Report(
        document_sha256=parsed.sha256,
        agency=agency,
        region=parsed.region,
        year=year,
        agency_id=agency_id,
        agency_source=parsed.agency_source,
        region_code=resolved.region_code if resolved else None,
        level=resolved.level if resolved else None,
        template=parsed.template,
        parser_version=parsed.parser_version,
        loaded_at=now,
        # Current once settled below: the unique index allows one current report per agency
        # and year at every moment, so a new one must not be current beside the old one.
        is_current=(agency is None and agency_id is None) or year is None,
        run_id=run_id,
    )
    session.add(report)
    session.flush()

    # Bulk executemany: ~200 facts a report, one round trip per batch instead of per row.
    _bulk_insert(session, Section, _section_rows(report.id, parsed))
    _bulk_insert(session, Fact, _fact_rows(report.id, parsed))
    _bulk_insert(session, Check, _check_rows(report.id, parsed))
    _bulk_insert(
        session,
        Finding,
        [{"report_id": report.id, "code": p.code, "message": p.message} for p in parsed.problems],
    )
    _settle_current(session, agency, agency_id, year)


def _section_rows(report_id: int, parsed: ParseResult) -> list[dict[str, Any]]:
    return [
        {
            "report_id": report_id,
            "position": i,
            "code": s.code,
            "heading": s.heading,
            "text": s.text,
        }
        for i, s in enumerate(parsed.sections)
    ]


def _fact_rows(report_id: int, parsed: ParseResult) -> list[dict[str, Any]]:
    return [
        {
            "report_id": report_id,
            "table_code": f.table,
            "row_code": f.row,
            "col_code": f.col,
            "value": f.value,
            "raw": f.raw,
            "label": f.label,
            "unit": f.unit,
            "state": cell_state(f.value, f.raw),
            "source": f.source,
            "evidence": f.evidence,
            "section": f.section,
        }
        for f in parsed.facts
    ]


def _check_rows(report_id: int, parsed: ParseResult) -> list[dict[str, Any]]:
    return [
        {"report_id": report_id, "rule": c.rule, "scope": c.scope, "ok": c.ok, "detail": c.detail}
        for c in parsed.checks
    ]


def _bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    if rows:  # an empty list would run one INSERT of defaults, not none
        # A Core executemany on the session's connection: the ORM's bulk path costs a third more
        # a report and nothing here needs it (no identities, no relationships).
        session.connection().execute(insert(model.__table__), rows)


def _settle_current(
    session: Session, agency: str | None, agency_id: int | None, year: int | None
) -> None:
    """Flag current the report of (agency, year) whose document was first seen last.

    The agency is its id where it resolved (so 洪泽区人民政府 and 淮安市洪泽区人民政府 are one),
    else its printed name. First-seen order, not report id, because a reload re-inserts a
    report: re-parsing an old edition must not make it supersede the re-published one.
    """
    if (agency is None and agency_id is None) or year is None:
        return
    identity = f"id:{agency_id}" if agency_id is not None else f"name:{agency}"
    _lock_agency_year(session, identity, year)
    same = (
        (Report.agency_id == agency_id) if agency_id is not None else (Report.agency == agency)
    ) & (Report.year == year)
    newest = session.scalars(
        select(Report.id)
        .join(Report.document)
        .where(same)
        .order_by(Document.first_seen_at.desc(), Report.id.desc())
        .limit(1)
    ).first()
    if newest is not None:
        # Two statements, the old one first: PostgreSQL checks the unique index row by row.
        session.execute(
            update(Report)
            .where(same, Report.id != newest, Report.is_current)
            .values(is_current=False)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Report)
            .where(Report.id == newest)
            .values(is_current=True)
            .execution_options(synchronize_session=False)
        )


def _lock_agency_year(session: Session, identity: str, year: int) -> None:
    """Serialise the settling of one (agency, year) so exactly one report ends up current.

    Under READ COMMITTED two concurrent loaders would not see each other's new report and both
    keep theirs current; taken before the settling query, the lock makes the second loader see
    the first one's committed report. SQLite needs nothing: BEGIN IMMEDIATE serialises writers.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"{identity}\x00{year}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
