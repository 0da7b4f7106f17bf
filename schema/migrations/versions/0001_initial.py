"""The warehouse: documents, reports, sections, facts, checks, harvest_log and the BI views.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the template codes (template.md): a migration must not change meaning when
# the live registry does.
APPLICANT_COLUMNS = (
    "natural_person",
    "commercial",
    "research",
    "public_interest",
    "legal_service",
    "other_org",
    "total",
)
APPLICATION_ROWS = (
    "new_received",
    "carried_over",
    "granted",
    "partially_granted",
    "denied.state_secret",
    "denied.prohibited_by_law",
    "denied.security_stability",
    "denied.third_party",
    "denied.internal_affairs",
    "denied.process_information",
    "denied.enforcement_files",
    "denied.query_matters",
    "unavailable.not_held",
    "unavailable.needs_creation",
    "unavailable.still_unclear",
    "not_processed.petition",
    "not_processed.repeated",
    "not_processed.publications",
    "not_processed.excessive",
    "not_processed.confirmation",
    "other_handling",
    "other_handling.no_correction",
    "other_handling.fee_unpaid",
    "other_handling.other",
    "total_processed",
    "carried_forward",
)


def _sql_list(codes: Sequence[str]) -> str:
    return ", ".join(f"'{code}'" for code in codes)


_OUTCOME_COLUMNS = ",\n".join(
    f"  MAX(CASE WHEN f.row_code = '{code}' THEN f.value END) AS {code.replace('.', '_')}"
    for code in APPLICATION_ROWS
)

# Plain SQL that SQLite and PostgreSQL both accept: conditional aggregation, no FILTER, no pivot.
V_APPLICATIONS = f"""
CREATE VIEW v_applications AS
SELECT r.id AS report_id, r.agency, r.region, r.year, r.template, f.col_code AS applicant,
{_OUTCOME_COLUMNS}
FROM reports r
JOIN facts f ON f.report_id = r.id AND f.table_code = 'applications'
WHERE r.is_current AND f.col_code IN ({_sql_list(APPLICANT_COLUMNS)})
GROUP BY r.id, r.agency, r.region, r.year, r.template, f.col_code
"""

V_CHECK_FAILURES = """
CREATE VIEW v_check_failures AS
SELECT r.agency, r.region, r.year, c.report_id, r.is_current, c.rule, c.scope, c.detail,
       d.source, d.sha256
FROM checks c
JOIN reports r ON r.id = c.report_id
JOIN documents d ON d.sha256 = r.document_sha256
WHERE NOT c.ok
"""


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("problem_code", sa.Text(), nullable=True),
        sa.Column("problem_message", sa.Text(), nullable=True),
        sa.Column("parser_version", sa.Text(), nullable=False),
        sa.Column("raw_path", sa.Text(), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("sha256", name="pk_documents"),
    )
    op.create_table(
        "harvest_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("portal", sa.Text(), nullable=True),
        sa.Column(
            "fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_harvest_log"),
    )
    op.create_index("ix_harvest_log_sha256", "harvest_log", ["sha256"])
    op.create_index("ix_harvest_log_url_fetched_at", "harvest_log", ["url", "fetched_at"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("agency", sa.Text(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("parser_version", sa.Text(), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("is_current", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_sha256"],
            ["documents.sha256"],
            name="fk_reports_document_sha256_documents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.UniqueConstraint("document_sha256", name="uq_reports_document_sha256"),
    )
    op.create_index("ix_reports_agency_year", "reports", ["agency", "year"])
    op.create_table(
        "sections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name="fk_sections_report_id_reports", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sections"),
    )
    op.create_index("ix_sections_report_id", "sections", ["report_id"])
    op.create_table(
        "facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("table_code", sa.Text(), nullable=False),
        sa.Column("row_code", sa.Text(), nullable=False),
        sa.Column("col_code", sa.Text(), nullable=False),
        sa.Column("value", sa.Numeric(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name="fk_facts_report_id_reports", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_facts"),
    )
    op.create_index(
        "ix_facts_report_id_table_code_row_code_col_code",
        "facts",
        ["report_id", "table_code", "row_code", "col_code"],
    )
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name="fk_checks_report_id_reports", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checks"),
    )
    op.create_index("ix_checks_report_id_rule", "checks", ["report_id", "rule"])
    op.execute(V_APPLICATIONS)
    op.execute(V_CHECK_FAILURES)


def downgrade() -> None:
    op.execute("DROP VIEW v_check_failures")
    op.execute("DROP VIEW v_applications")
    for table in ("checks", "facts", "sections", "reports", "harvest_log", "documents"):
        op.drop_table(table)
