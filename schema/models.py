"""The warehouse tables (see the warehouse contract): one schema for SQLite and PostgreSQL.

Column names are a public contract read by BI tools: add freely, never rename or drop without a
migration. Any change here needs a matching Alembic revision in `migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints let SQLite batch migrations (which copy tables) find them again later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class ExactNumeric(TypeDecorator[Decimal]):
    """NUMERIC that reads back as the Decimal that was written, on both backends.

    PostgreSQL keeps NUMERIC exactly. SQLite stores a double, which SQLAlchemy would pad to ten
    decimals (96171.6 -> 96171.6000000000) with a warning; the shortest repr of that double is
    the figure as printed, since report figures have far fewer than 15 significant digits.
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(asdecimal=False))
        return dialect.type_descriptor(Numeric())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        # float -> Decimal via repr so PostgreSQL never sees binary noise.
        return Decimal(repr(value)) if isinstance(value, float) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Document(Base):
    """A distinct source file, known by the sha256 of its bytes."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(BigInteger)
    pages: Mapped[int | None] = mapped_column(Integer)
    # loaded | failed | not_a_report
    status: Mapped[str] = mapped_column(Text)
    problem_code: Mapped[str | None] = mapped_column(Text)
    problem_message: Mapped[str | None] = mapped_column(Text)
    # The parser version that produced the stored rows: a newer one re-parses the document.
    parser_version: Mapped[str] = mapped_column(Text)
    # The key of the raw bytes under the raw store's root (harvest/rawstore.py), never a path
    # of one machine: the root is configuration.
    raw_path: Mapped[str | None] = mapped_column(
        Text,
        comment="key of the raw bytes under the raw store root ($NIANBAO_RAW), e.g. ab/abcd….pdf",
    )
    # The run that last wrote this row (NULL for rows loaded before runs were recorded).
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id"), index=True, comment="runs.id of the run that last wrote it"
    )
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )

    report: Mapped[Report | None] = relationship(back_populates="document", passive_deletes=True)


class Agency(Base):
    """One publishing body across years and spellings (see parsers/agency.py).

    `key` is its identity: the 行政区划 code and the body's own name (320813:人民政府), or the
    normalised name when no code is known. 洪泽区人民政府 and 淮安市洪泽区人民政府 are one row.
    """

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    canonical_name: Mapped[str] = mapped_column(Text)
    # government | government_office | department | township | development_zone
    kind: Mapped[str] = mapped_column(Text)
    # 国家 | 省 | 市 | 县 | 乡
    level: Mapped[str | None] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    province: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    county: Mapped[str | None] = mapped_column(Text)

    aliases: Mapped[list[AgencyAlias]] = relationship(
        order_by="AgencyAlias.id", passive_deletes=True
    )


class AgencyAlias(Base):
    """A name a report printed for an agency (each spelling once)."""

    __tablename__ = "agency_aliases"
    __table_args__ = (Index("ix_agency_aliases_agency_id_name", "agency_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)


class Report(Base):
    """A parsed report: at most one per document."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_agency_year", "agency", "year"),
        Index("ix_reports_agency_id_year", "agency_id", "year"),
        # One current report per agency and year: by agency id where the name resolved, else
        # by the printed name (the loader's `_settle_current` decides which one).
        Index(
            "uq_reports_current_agency_id_year",
            "agency_id",
            "year",
            unique=True,
            postgresql_where=text("is_current AND agency_id IS NOT NULL"),
            sqlite_where=text("is_current AND agency_id IS NOT NULL"),
        ),
        Index(
            "uq_reports_current_agency_year",
            "agency",
            "year",
            unique=True,
            postgresql_where=text("is_current AND agency_id IS NULL AND agency IS NOT NULL"),
            sqlite_where=text("is_current AND agency_id IS NULL AND agency IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_sha256: Mapped[str] = mapped_column(
        ForeignKey("documents.sha256", ondelete="CASCADE"), unique=True
    )
    agency: Mapped[str | None] = mapped_column(Text)  # as printed
    region: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    # title | properties | preamble | signature | body | file_name | hint_title | hint_publisher
    agency_source: Mapped[str | None] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(String(6))
    level: Mapped[str | None] = mapped_column(Text)
    # 2019 | 2021 | 2008 (pre-2019 figures read) | free_form
    template: Mapped[str | None] = mapped_column(Text)
    parser_version: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    # False once a later report for the same agency and year was loaded; the older one stays.
    is_current: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The run that loaded it; its sections, facts, checks and findings were loaded with it.
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id"), index=True, comment="runs.id of the run that loaded it"
    )

    document: Mapped[Document] = relationship(back_populates="report")
    sections: Mapped[list[Section]] = relationship(
        order_by="Section.position", passive_deletes=True
    )
    facts: Mapped[list[Fact]] = relationship(order_by="Fact.id", passive_deletes=True)
    checks: Mapped[list[Check]] = relationship(order_by="Check.id", passive_deletes=True)


class Section(Base):
    __tablename__ = "sections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    # Order in the report, since codes may repeat or be missing.
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(Text)
    heading: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class Fact(Base):
    """A table cell: NULL value where the report printed a blank or a dash (raw keeps it)."""

    __tablename__ = "facts"
    __table_args__ = (
        Index(
            "ix_facts_report_id_table_code_row_code_col_code",
            "report_id",
            "table_code",
            "row_code",
            "col_code",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    table_code: Mapped[str] = mapped_column(Text)
    row_code: Mapped[str] = mapped_column(Text)
    col_code: Mapped[str] = mapped_column(Text)
    value: Mapped[Decimal | None] = mapped_column(ExactNumeric)
    raw: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    # value (printed with a value) | blank (printed blank or a dash) | unreadable (printed text
    # that is no number). A cell the report does not have has no row: the views call it absent.
    state: Mapped[str | None] = mapped_column(
        Text, comment="value, blank or unreadable (absent cells have no row)"
    )
    # Template 2008 only (NULL for the national tables): prose | table, the sentence or printed
    # 统计表 row the figure stands in, and the section it was read from.
    source: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    section: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    """One ingest run: when it ran, its Prefect flow run, and what it did to documents."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow: Mapped[str] = mapped_column(Text)  # nianbao-ingest, or the library called directly
    flow_run_id: Mapped[str | None] = mapped_column(Text, index=True)
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # running | completed | failed
    state: Mapped[str] = mapped_column(Text, default="running", server_default="running")
    documents_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    loaded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reloaded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_a_report: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Check(Base):
    """A reconciliation rule (R1-R6) evaluated on a report; a failure is a finding, not an error."""

    __tablename__ = "checks"
    __table_args__ = (Index("ix_checks_report_id_rule", "report_id", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(Text)
    scope: Mapped[str | None] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)


class Finding(Base):
    """Something the parser noticed about a report that still loaded (see parsers/problems.py)."""

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_report_id", "report_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)


class HarvestLog(Base):
    """One HTTP fetch, successful or not; sha256 links to `documents` once the bytes are loaded."""

    __tablename__ = "harvest_log"
    __table_args__ = (Index("ix_harvest_log_url_fetched_at", "url", "fetched_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    portal: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    http_status: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class HarvestEntry(Base):
    """What a portal's listing said of a harvested document: the entry's title, date, publisher.

    One row per document (sha256) and listing entry; the parser was given these as hints, and
    `published` is when the portal published the report.
    """

    __tablename__ = "harvest_entries"
    __table_args__ = (Index("ix_harvest_entries_sha256_entry_url", "sha256", "entry_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    portal: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str | None] = mapped_column(Text)  # gkmlpt, jpage, trs, static
    entry_url: Mapped[str] = mapped_column(Text)  # the listing entry (an article, or the file)
    document_url: Mapped[str] = mapped_column(Text)  # where the bytes came from
    title: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)  # the report's year, by the entry's title
    published: Mapped[date | None] = mapped_column(Date)
    publisher: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
