"""Agencies: one row per publishing body, reports.agency_id / region_code / level, and views
that carry them. Existing reports are back-filled by resolving their stored agency names.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the template codes (template.md), as in 0001: a migration must not change
# meaning when the live registry does.
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
_OUTCOME_COLUMNS = ",\n".join(
    f"  MAX(CASE WHEN f.row_code = '{code}' THEN f.value END) AS {code.replace('.', '_')}"
    for code in APPLICATION_ROWS
)
_APPLICANTS = ", ".join(f"'{code}'" for code in APPLICANT_COLUMNS)
_REPORT_COLUMNS = (
    "r.agency, r.agency_id, a.canonical_name AS agency_canonical, r.level, r.region_code, "
    "r.region, a.province, a.city, a.county, r.year"
)

V_APPLICATIONS = f"""
CREATE VIEW v_applications AS
SELECT r.id AS report_id, {_REPORT_COLUMNS}, r.template, f.col_code AS applicant,
{_OUTCOME_COLUMNS}
FROM reports r
JOIN facts f ON f.report_id = r.id AND f.table_code = 'applications'
LEFT JOIN agencies a ON a.id = r.agency_id
WHERE r.is_current AND f.col_code IN ({_APPLICANTS})
GROUP BY r.id, r.agency, r.agency_id, a.canonical_name, r.level, r.region_code, r.region,
         a.province, a.city, a.county, r.year, r.template, f.col_code
"""

V_CHECK_FAILURES = f"""
CREATE VIEW v_check_failures AS
SELECT {_REPORT_COLUMNS}, c.report_id, r.is_current, c.rule, c.scope, c.detail,
       d.source, d.sha256
FROM checks c
JOIN reports r ON r.id = c.report_id
JOIN documents d ON d.sha256 = r.document_sha256
LEFT JOIN agencies a ON a.id = r.agency_id
WHERE NOT c.ok
"""

# The views of 0001, restored on downgrade.
V_APPLICATIONS_0001 = f"""
CREATE VIEW v_applications AS
SELECT r.id AS report_id, r.agency, r.region, r.year, r.template, f.col_code AS applicant,
{_OUTCOME_COLUMNS}
FROM reports r
JOIN facts f ON f.report_id = r.id AND f.table_code = 'applications'
WHERE r.is_current AND f.col_code IN ({_APPLICANTS})
GROUP BY r.id, r.agency, r.region, r.year, r.template, f.col_code
"""

V_CHECK_FAILURES_0001 = """
CREATE VIEW v_check_failures AS
SELECT r.agency, r.region, r.year, c.report_id, r.is_current, c.rule, c.scope, c.detail,
       d.source, d.sha256
FROM checks c
JOIN reports r ON r.id = c.report_id
JOIN documents d ON d.sha256 = r.document_sha256
WHERE NOT c.ok
"""


def upgrade() -> None:
    op.execute("DROP VIEW v_check_failures")
    op.execute("DROP VIEW v_applications")
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("canonical_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("province", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("county", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
        sa.UniqueConstraint("key", name=op.f("uq_agencies_key")),
    )
    op.create_index("ix_agencies_region_code", "agencies", ["region_code"])
    op.create_table(
        "agency_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_aliases_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_aliases")),
    )
    op.create_index(
        "ix_agency_aliases_agency_id_name", "agency_aliases", ["agency_id", "name"], unique=True
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes an inline REFERENCES on a new NULL column; Alembic's batch mode would
        # copy and drop `reports`, and the drop cascades to its sections, facts and checks.
        op.execute(
            "ALTER TABLE reports ADD COLUMN agency_id INTEGER "
            "CONSTRAINT fk_reports_agency_id_agencies REFERENCES agencies (id)"
        )
    else:
        op.add_column("reports", sa.Column("agency_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_reports_agency_id_agencies"), "reports", "agencies", ["agency_id"], ["id"]
        )
    op.add_column("reports", sa.Column("agency_source", sa.Text(), nullable=True))
    op.add_column("reports", sa.Column("region_code", sa.String(length=6), nullable=True))
    op.add_column("reports", sa.Column("level", sa.Text(), nullable=True))
    op.create_index("ix_reports_agency_id_year", "reports", ["agency_id", "year"])
    _backfill(op.get_bind())
    op.execute(V_APPLICATIONS)
    op.execute(V_CHECK_FAILURES)


def _backfill(connection: sa.Connection) -> None:
    """Resolve the agency name of every stored report (with its stored region as the hint).

    The resolver is the live one: which place a name stands for is a fact of the code table,
    not of this revision. agency_source stays NULL: where the name was read is not stored.
    """
    from nianbao.parsers.agency import resolve_agency
    from nianbao.schema.agencies import agency_id_for

    reports = sa.table(
        "reports",
        sa.column("id"),
        sa.column("agency"),
        sa.column("region"),
        sa.column("year"),
        sa.column("agency_id"),
        sa.column("region_code"),
        sa.column("level"),
    )
    rows = connection.execute(
        sa.select(reports.c.id, reports.c.agency, reports.c.region, reports.c.year).where(
            reports.c.agency.is_not(None)
        )
    ).all()
    for report_id, name, region, year in rows:
        agency = resolve_agency(name, year, region)
        if agency is None:
            continue
        connection.execute(
            reports.update()
            .where(reports.c.id == report_id)
            .values(
                agency_id=agency_id_for(connection, agency, name),
                region_code=agency.region_code,
                level=agency.level,
            )
        )


def downgrade() -> None:
    op.execute("DROP VIEW v_check_failures")
    op.execute("DROP VIEW v_applications")
    op.drop_index("ix_reports_agency_id_year", table_name="reports")
    if op.get_bind().dialect.name == "sqlite":
        # Native DROP COLUMN (SQLite 3.35+), not a batch copy: see upgrade().
        for column in ("level", "region_code", "agency_source", "agency_id"):
            op.execute(f"ALTER TABLE reports DROP COLUMN {column}")
    else:
        op.drop_constraint(op.f("fk_reports_agency_id_agencies"), "reports", type_="foreignkey")
        for column in ("level", "region_code", "agency_source", "agency_id"):
            op.drop_column("reports", column)
    op.drop_index("ix_agency_aliases_agency_id_name", table_name="agency_aliases")
    op.drop_table("agency_aliases")
    op.drop_index("ix_agencies_region_code", table_name="agencies")
    op.drop_table("agencies")
    op.execute(V_APPLICATIONS_0001)
    op.execute(V_CHECK_FAILURES_0001)
