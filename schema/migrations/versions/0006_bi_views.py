"""A warehouse BI can trust: cell states, runs, constraints, and a documented view per table.

- `facts.state`: `value` (printed with a value), `blank` (printed blank, a dash, 无 …) or
  `unreadable` (printed text that is not a number). A cell absent from the report has no facts
  row; the views say `absent` for it, so aggregates can leave out what is not there.
- `runs`: one row per ingest run; `documents.run_id` and `reports.run_id` name the run that
  loaded them (sections, facts, checks and findings belong to their report).
- CHECK constraints on codes (SQLite: triggers that abort, since SQLite cannot add a CHECK to
  an existing table without copying it), and partial unique indexes: one current report per
  agency and year.
- Views: `v_applications`, `v_key_series` and `v_check_failures` extended (no column dropped or
  renamed), and `v_active_disclosure`, `v_review_litigation`, `v_reports`, `v_facts`,
  `v_year_over_year` new. PostgreSQL gets COMMENT ON for the views and their columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the codes (template.md, docs/template-2008.md, parsers/values.py): a
# migration must not change meaning when the live registry does.
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
# Table 二's columns: 2019 first, then those 2021 added (`decisions` is in both).
ACTIVE_COLUMNS = (
    "made",
    "published",
    "total_public",
    "prev_year_items",
    "change",
    "decisions",
    "projects",
    "amount",
    "issued",
    "repealed",
    "in_force",
    "amount_10k_yuan",
)
REVIEW_GROUPS = ("review", "litigation_direct", "litigation_after_review")
REVIEW_COLUMNS = ("upheld", "corrected", "other", "pending", "total")
NULL_MARKERS = (
    "",
    "无",
    "/",
    "／",
    "\\",
    "-",
    "—",
    "——",
    "－",
    "–",
    "─",
    "一",
    "不适用",
    "空",
    "暂无",
    "x",
    "X",
    "*",
)
# Money columns: the unit the column header implies when the cell prints none. The 2019
# template's 采购总金额 names no unit, so an amount printed without one is not converted.
MONEY_COLUMNS = {"amount": None, "amount_10k_yuan": "万元"}
UNIT_TO_YUAN = {"元": 1, "万元": 10_000, "亿元": 100_000_000}

# (table, column, allowed values, may be NULL): the codes a BI tool groups by.
CODE_CHECKS = (
    ("documents", "status", ("loaded", "failed", "not_a_report"), False),
    ("reports", "template", ("2019", "2021", "2008", "free_form"), True),
    ("reports", "level", ("国家", "省", "市", "县", "乡"), True),
    ("agencies", "level", ("国家", "省", "市", "县", "乡"), True),
    (
        "agencies",
        "kind",
        ("government", "government_office", "department", "township", "development_zone"),
        False,
    ),
    ("checks", "rule", ("R1", "R2", "R3", "R4", "R5", "R6"), False),
    (
        "facts",
        "table_code",
        ("active_disclosure", "applications", "review_litigation", "statistics", "prose"),
        False,
    ),
    ("facts", "state", ("value", "blank", "unreadable"), True),
    ("runs", "state", ("running", "completed", "failed"), False),
)
# 6-digit 行政区划 codes.
REGION_CODE_COLUMNS = (("reports", "region_code"), ("agencies", "region_code"))
RUN_COUNTS = ("documents_seen", "loaded", "reloaded", "unchanged", "failed", "not_a_report")


def _name(code: str) -> str:
    return code.replace(".", "_")


def _quoted(codes: Sequence[str]) -> str:
    return ", ".join("'" + code.replace("'", "''") + "'" for code in codes)


_AGENCY_JOIN = "LEFT JOIN agencies a ON a.id = r.agency_id"
_REPORT_COLUMNS = (
    "r.agency, r.agency_id, a.canonical_name AS agency_canonical, r.level, r.region_code, "
    "r.region, a.province, a.city, a.county, r.year"
)
_REPORT_GROUP = (
    "r.id, r.agency, r.agency_id, a.canonical_name, r.level, r.region_code, r.region, "
    "a.province, a.city, a.county, r.year, r.template"
)


def _pivot(key: str, codes: Sequence[str]) -> tuple[str, str]:
    """Conditional aggregation: a value column and a `_state` column per code."""
    values = ",\n".join(
        f"  MAX(CASE WHEN f.{key} = '{code}' THEN f.value END) AS {_name(code)}" for code in codes
    )
    states = ",\n".join(
        f"  COALESCE(MAX(CASE WHEN f.{key} = '{code}' THEN f.state END), 'absent') "
        f"AS {_name(code)}_state"
        for code in codes
    )
    return values, states


_APP_VALUES, _APP_STATES = _pivot("row_code", APPLICATION_ROWS)
V_APPLICATIONS = f"""
CREATE VIEW v_applications AS
SELECT r.id AS report_id, {_REPORT_COLUMNS}, r.template, f.col_code AS applicant,
{_APP_VALUES},
{_APP_STATES}
FROM reports r
JOIN facts f ON f.report_id = r.id AND f.table_code = 'applications'
{_AGENCY_JOIN}
WHERE r.is_current AND f.col_code IN ({_quoted(APPLICANT_COLUMNS)})
GROUP BY {_REPORT_GROUP}, f.col_code
"""

_ACTIVE_VALUES, _ACTIVE_STATES = _pivot("col_code", ACTIVE_COLUMNS)
_UNIT = (
    "COALESCE(f.unit, CASE f.col_code "
    + " ".join(f"WHEN '{col}' THEN '{unit}'" for col, unit in MONEY_COLUMNS.items() if unit)
    + " END)"
)
_TO_YUAN = " ".join(f"WHEN '{unit}' THEN {factor}" for unit, factor in UNIT_TO_YUAN.items())
V_ACTIVE_DISCLOSURE = f"""
CREATE VIEW v_active_disclosure AS
SELECT r.id AS report_id, {_REPORT_COLUMNS}, r.template, f.row_code AS item,
  MAX(f.label) AS label,
{_ACTIVE_VALUES},
{_ACTIVE_STATES},
  MAX(CASE WHEN f.col_code IN ({_quoted(list(MONEY_COLUMNS))})
      THEN f.value * CASE {_UNIT} {_TO_YUAN} END END) AS amount_yuan,
  MAX(CASE WHEN f.col_code IN ({_quoted(list(MONEY_COLUMNS))}) THEN {_UNIT} END) AS amount_unit
FROM reports r
JOIN facts f ON f.report_id = r.id AND f.table_code = 'active_disclosure'
{_AGENCY_JOIN}
WHERE r.is_current
GROUP BY {_REPORT_GROUP}, f.row_code
"""

_REVIEW_VALUES, _REVIEW_STATES = _pivot("col_code", REVIEW_COLUMNS)
V_REVIEW_LITIGATION = f"""
CREATE VIEW v_review_litigation AS
SELECT r.id AS report_id, {_REPORT_COLUMNS}, r.template, f.row_code AS proceeding,
{_REVIEW_VALUES},
{_REVIEW_STATES}
FROM reports r
JOIN facts f ON f.report_id = r.id AND f.table_code = 'review_litigation'
{_AGENCY_JOIN}
WHERE r.is_current AND f.row_code IN ({_quoted(REVIEW_GROUPS)})
GROUP BY {_REPORT_GROUP}, f.row_code
"""

V_CHECK_FAILURES = f"""
CREATE VIEW v_check_failures AS
SELECT {_REPORT_COLUMNS}, c.report_id, r.is_current, c.rule, c.scope, c.detail,
       d.source, d.sha256, r.template
FROM checks c
JOIN reports r ON r.id = c.report_id
JOIN documents d ON d.sha256 = r.document_sha256
{_AGENCY_JOIN}
WHERE NOT c.ok
"""

FREEFORM_SERIES = (
    ("applications.received", "applications_received"),
    ("review.total", "reviews"),
    ("litigation.total", "lawsuits"),
)
_SERIES_CASE = (
    "CASE f.row_code "
    + " ".join(f"WHEN '{row}' THEN '{series}'" for row, series in FREEFORM_SERIES)
    + " END"
)
_FREEFORM_ROWS = _quoted([row for row, _ in FREEFORM_SERIES])
# As 0005, plus who published it and the cell's state: `value`, or `blank` where every cell
# the figure adds up was printed blank (a figure the report does not have has no row).
V_KEY_SERIES = f"""
CREATE VIEW v_key_series AS
SELECT r.id AS report_id, r.agency, r.region, r.year, r.template, s.series, s.value, s.source,
       r.agency_id, a.canonical_name AS agency_canonical, r.level, r.region_code,
       a.province, a.city, a.county,
       CASE WHEN s.value IS NULL THEN 'blank' ELSE 'value' END AS state
FROM reports r
JOIN (
  SELECT f.report_id, 'applications_received' AS series, f.value, 'template' AS source
  FROM facts f
  WHERE f.table_code = 'applications' AND f.row_code = 'new_received' AND f.col_code = 'total'
  UNION ALL
  SELECT f.report_id, 'reviews', f.value, 'template'
  FROM facts f
  WHERE f.table_code = 'review_litigation' AND f.row_code = 'review' AND f.col_code = 'total'
  UNION ALL
  SELECT f.report_id, 'lawsuits', SUM(f.value), 'template'
  FROM facts f
  WHERE f.table_code = 'review_litigation' AND f.col_code = 'total'
    AND f.row_code IN ('litigation_direct', 'litigation_after_review')
  GROUP BY f.report_id
  UNION ALL
  SELECT f.report_id, {_SERIES_CASE}, f.value, 'table'
  FROM facts f
  WHERE f.table_code = 'statistics' AND f.col_code = 'year' AND f.row_code IN ({_FREEFORM_ROWS})
  UNION ALL
  SELECT f.report_id, {_SERIES_CASE}, f.value, 'prose'
  FROM facts f
  WHERE f.table_code = 'prose' AND f.col_code = 'year' AND f.row_code IN ({_FREEFORM_ROWS})
    AND NOT EXISTS (
      SELECT 1 FROM facts t
      WHERE t.report_id = f.report_id AND t.table_code = 'statistics'
        AND t.col_code = 'year' AND t.row_code = f.row_code
    )
) s ON s.report_id = r.id
{_AGENCY_JOIN}
WHERE r.is_current
"""


def _total(row: str) -> str:
    return (
        f"(SELECT f.value FROM facts f WHERE f.report_id = r.id AND f.table_code = 'applications'"
        f" AND f.row_code = '{row}' AND f.col_code = 'total')"
    )


def _series(series: str) -> str:
    return f"MAX(CASE WHEN k.series = '{series}' THEN k.value END) AS {series}"


V_REPORTS = f"""
CREATE VIEW v_reports AS
SELECT r.id AS report_id, {_REPORT_COLUMNS}, r.template, r.agency_source,
  d.source, d.sha256, d.format, d.pages,
  (SELECT MIN(h.published) FROM harvest_entries h WHERE h.sha256 = r.document_sha256)
    AS published,
  (SELECT MIN(h.document_url) FROM harvest_entries h WHERE h.sha256 = r.document_sha256)
    AS document_url,
  k.applications_received,
  {_total("total_processed")} AS applications_processed,
  {_total("granted")} AS granted,
  {_total("carried_forward")} AS carried_forward,
  k.reviews,
  k.lawsuits,
  (SELECT COUNT(*) FROM facts f WHERE f.report_id = r.id) AS cells,
  (SELECT COUNT(*) FROM facts f WHERE f.report_id = r.id AND f.state = 'blank') AS blank_cells,
  (SELECT COUNT(*) FROM facts f WHERE f.report_id = r.id AND f.state = 'unreadable')
    AS unreadable_cells,
  (SELECT COUNT(*) FROM checks c WHERE c.report_id = r.id) AS checks,
  (SELECT COUNT(*) FROM checks c WHERE c.report_id = r.id AND NOT c.ok) AS failed_checks,
  (SELECT COUNT(DISTINCT c.rule) FROM checks c WHERE c.report_id = r.id AND NOT c.ok)
    AS failed_rules,
  (SELECT COUNT(*) FROM findings g WHERE g.report_id = r.id) AS findings,
  r.parser_version, r.loaded_at, r.run_id
FROM reports r
JOIN documents d ON d.sha256 = r.document_sha256
{_AGENCY_JOIN}
-- Once over the key series, not once per report: v_key_series is a union of five scans.
LEFT JOIN (
  SELECT k.report_id, {_series("applications_received")}, {_series("reviews")},
         {_series("lawsuits")}
  FROM v_key_series k GROUP BY k.report_id
) k ON k.report_id = r.id
WHERE r.is_current
"""

V_FACTS = f"""
CREATE VIEW v_facts AS
SELECT f.id AS fact_id, f.report_id, {_REPORT_COLUMNS}, r.template, r.is_current,
  f.table_code, f.row_code, f.col_code, f.value, f.state, f.raw, f.label, f.unit,
  f.source, f.evidence, f.section
FROM facts f
JOIN reports r ON r.id = f.report_id
{_AGENCY_JOIN}
"""

# (figure, the previous year's figure it is compared with): carried_over against the
# previous carried_forward is R5; the others against themselves.
YEAR_FIGURES = (
    ("applications_received", "applications_received"),
    ("applications_processed", "applications_processed"),
    ("granted", "granted"),
    ("reviews", "reviews"),
    ("lawsuits", "lawsuits"),
    ("carried_over", "carried_forward"),
)
_FIGURES = "\n  UNION ALL\n".join(
    [
        "  SELECT k.report_id, k.series AS figure, k.value, k.state FROM v_key_series k",
        *(
            f"  SELECT f.report_id, '{figure}', f.value, f.state FROM facts f"
            f" WHERE f.table_code = 'applications' AND f.row_code = '{row}'"
            " AND f.col_code = 'total'"
            for figure, row in (
                ("applications_processed", "total_processed"),
                ("granted", "granted"),
                ("carried_over", "carried_over"),
                ("carried_forward", "carried_forward"),
            )
        ),
    ]
)
_PAIRED = " ".join(f"WHEN '{figure}' THEN '{before}'" for figure, before in YEAR_FIGURES)
V_YEAR_OVER_YEAR = f"""
CREATE VIEW v_year_over_year AS
SELECT r.agency_id, a.canonical_name AS agency_canonical, r.agency, r.level, r.region_code,
  a.province, r.year, r.id AS report_id, cur.figure, cur.value, cur.state,
  p.id AS previous_report_id, prev.figure AS previous_figure, prev.value AS previous_value,
  prev.state AS previous_state,
  CASE WHEN cur.state = 'value' AND prev.state = 'value' THEN cur.value - prev.value END
    AS change,
  CASE WHEN cur.state = 'value' AND prev.state = 'value' AND prev.value <> 0
    THEN (cur.value - prev.value) * 1.0 / prev.value END AS change_ratio
FROM reports r
JOIN (
{_FIGURES}
) cur ON cur.report_id = r.id
{_AGENCY_JOIN}
LEFT JOIN reports p ON p.agency_id = r.agency_id AND p.year = r.year - 1 AND p.is_current
LEFT JOIN (
{_FIGURES}
) prev ON prev.report_id = p.id AND prev.figure = CASE cur.figure {_PAIRED} END
WHERE r.is_current AND r.agency_id IS NOT NULL
  AND cur.figure IN ({_quoted([figure for figure, _ in YEAR_FIGURES])})
"""

NEW_VIEWS = (
    ("v_active_disclosure", V_ACTIVE_DISCLOSURE),
    ("v_review_litigation", V_REVIEW_LITIGATION),
    ("v_reports", V_REPORTS),
    ("v_facts", V_FACTS),
    ("v_year_over_year", V_YEAR_OVER_YEAR),
)

# PostgreSQL COMMENT ON: what a BI tool shows beside a view or column.
_STATE = (
    "value (printed with a value), blank (printed blank or a dash: often 0, sometimes a total "
    "left unfilled), unreadable (printed text that is no number) or absent (the report has no "
    "such cell, or it did not load)"
)
_WHO = {
    "report_id": "reports.id of the current report",
    "agency": "the publishing body as the report prints it",
    "agency_id": "agencies.id: one body across years and spellings",
    "agency_canonical": "the body's name with its place in full",
    "level": "国家, 省, 市, 县 or 乡",
    "region_code": "6-digit 行政区划 code of the body's place",
    "region": "region of the portal the report was harvested from",
    "province": "province of region_code",
    "city": "city of region_code",
    "county": "county of region_code",
    "year": "the year the report covers",
    "template": "2019, 2021, 2008 (pre-2019 figures read) or free_form",
}


def _comments() -> dict[str, tuple[str, dict[str, str]]]:
    applications = {
        **_WHO,
        "applicant": "applicant column of table 三: " + ", ".join(APPLICANT_COLUMNS),
        **{_name(r): f"table 三 row {r}; NULL unless its state is value" for r in APPLICATION_ROWS},
        **{f"{_name(r)}_state": f"{r}: {_STATE}" for r in APPLICATION_ROWS},
    }
    active = {
        **_WHO,
        "item": "table 二 row code (rules, normative_documents, licensing, …; extra.* local rows)",
        "label": "the row as printed",
        **{
            _name(c): f"table 二 column {c}; NULL unless its state is value" for c in ACTIVE_COLUMNS
        },
        **{f"{_name(c)}_state": f"{c}: {_STATE}" for c in ACTIVE_COLUMNS},
        "amount_yuan": "the row's money (2019 amount, 2021 amount_10k_yuan) in 元; NULL when "
        "the unit is unknown",
        "amount_unit": "the unit the money was printed in (the cell's, else the column's)",
    }
    review = {
        **_WHO,
        "proceeding": "review, litigation_direct or litigation_after_review",
        **{c: f"table 四 column {c}; NULL unless its state is value" for c in REVIEW_COLUMNS},
        **{f"{c}_state": f"{c}: {_STATE}" for c in REVIEW_COLUMNS},
    }
    reports = {
        **_WHO,
        "source": "where the document came from: a URL, or a file path",
        "published": "the date the portal's listing gives (NULL for a file not harvested)",
        "applications_received": "三 new_received/total (pre-2019: its applications figure)",
        "applications_processed": "三 total_processed/total",
        "granted": "三 granted/total",
        "reviews": "四 review/total (pre-2019: its reviews figure)",
        "lawsuits": "四 litigation totals added (pre-2019: its lawsuits figure)",
        "failed_checks": "checks of R1–R6 that failed",
        "failed_rules": "distinct rules of R1–R6 that failed",
        "findings": "findings the parser recorded",
        "run_id": "runs.id of the run that loaded the report",
    }
    yoy = {
        "figure": ", ".join(figure for figure, _ in YEAR_FIGURES),
        "previous_figure": "the previous year's figure compared: carried_over is compared with "
        "carried_forward (R5), the others with themselves",
        "change": "value - previous_value, when both are printed values",
        "change_ratio": "change / previous_value",
        "state": _STATE,
        "previous_state": _STATE,
    }
    return {
        "v_applications": (
            "Table 三 of each current report, a row per applicant column",
            applications,
        ),
        "v_active_disclosure": (
            "Table 二 of each current report, a row per item; 2019 and 2021 columns side by side "
            "(docs/bi.md says which compare)",
            active,
        ),
        "v_review_litigation": ("Table 四 of each current report, a row per proceeding", review),
        "v_reports": (
            "One row per current report: who, when, where from, key totals, quality",
            reports,
        ),
        "v_facts": (
            "Every cell of every report, with its state (value, blank, unreadable)",
            {"state": _STATE, "is_current": "false once a later report superseded it"},
        ),
        "v_key_series": ("Figures whose meaning is the same from 2008 to today", {"state": _STATE}),
        "v_check_failures": ("Every failed rule R1–R6 with its report", {}),
        "v_year_over_year": (
            "Each agency's key figures next to the previous year's current report",
            yoy,
        ),
    }


def _comment_on(connection: sa.Connection) -> None:
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    for view, (comment, columns) in _comments().items():
        connection.exec_driver_sql(f"COMMENT ON VIEW {view} IS {literal(comment)}")
        for column, text in columns.items():
            connection.exec_driver_sql(f"COMMENT ON COLUMN {view}.{column} IS {literal(text)}")
    for table, column, text in (
        ("facts", "state", "value, blank or unreadable (absent cells have no row)"),
        ("reports", "run_id", "runs.id of the run that loaded it"),
        ("documents", "run_id", "runs.id of the run that last wrote it"),
    ):
        connection.exec_driver_sql(f"COMMENT ON COLUMN {table}.{column} IS {literal(text)}")


def _add_checks(connection: sa.Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    for table, column, allowed, nullable in CODE_CHECKS:
        condition = f"{column} IN ({_quoted(allowed)})"
        _add_check(connection, table, column, condition, nullable, sqlite)
    for table, column in REGION_CODE_COLUMNS:
        condition = (
            f"{column} GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'"
            if sqlite
            else f"{column} ~ '^[0-9]{{6}}$'"
        )
        _add_check(connection, table, column, condition, True, sqlite)


def _add_check(
    connection: sa.Connection,
    table: str,
    column: str,
    condition: str,
    nullable: bool,
    sqlite: bool,
) -> None:
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    name = f"ck_{table}_{column}"
    if not sqlite:
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")
        return
    new = condition.replace(column, f"NEW.{column}")
    for event in ("INSERT", "UPDATE"):
        connection.exec_driver_sql(
            f"CREATE TRIGGER {name}_{event.lower()} BEFORE {event} ON {table} "
            f"WHEN NOT ({new}) BEGIN "
            f"SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
        )


def _drop_checks(connection: sa.Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    columns = [(t, c) for t, c, _, _ in CODE_CHECKS] + list(REGION_CODE_COLUMNS)
    for table, column in columns:
        name = f"ck_{table}_{column}"
        if sqlite:
            for event in ("insert", "update"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}_{event}")
        elif table != "runs":  # dropped with its table
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


def _add_run_id(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Inline REFERENCES, not a batch copy: dropping `reports` would cascade to its facts.
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN run_id INTEGER "
            f"CONSTRAINT fk_{table}_run_id_runs REFERENCES runs (id)"
        )
    else:
        op.add_column(table, sa.Column("run_id", sa.Integer(), nullable=True))
        op.create_foreign_key(f"fk_{table}_run_id_runs", table, "runs", ["run_id"], ["id"])
    op.create_index(f"ix_{table}_run_id", table, ["run_id"])


def _settle_duplicates(connection: sa.Connection) -> None:
    """Before 0003 `is_current` was per printed name: leave one current report per agency id
    and year (the document first seen last, as the loader decides) so the unique index holds."""
    groups = connection.exec_driver_sql(
        "SELECT agency_id, year FROM reports WHERE is_current AND agency_id IS NOT NULL "
        "GROUP BY agency_id, year HAVING COUNT(*) > 1"
    ).all()
    for agency_id, year in groups:
        newest = connection.execute(
            sa.text(
                "SELECT r.id FROM reports r JOIN documents d ON d.sha256 = r.document_sha256 "
                "WHERE r.agency_id = :agency AND r.year = :year "
                "ORDER BY d.first_seen_at DESC, r.id DESC LIMIT 1"
            ),
            {"agency": agency_id, "year": year},
        ).scalar_one()
        connection.execute(
            sa.text(
                "UPDATE reports SET is_current = (id = :newest) "
                "WHERE agency_id = :agency AND year = :year"
            ),
            {"newest": newest, "agency": agency_id, "year": year},
        )


def upgrade() -> None:
    connection = op.get_bind()
    for view in ("v_check_failures", "v_applications", "v_key_series"):
        op.execute(f"DROP VIEW {view}")
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("flow_run_id", sa.Text(), nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.Text(), server_default="running", nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in RUN_COUNTS),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_flow_run_id", "runs", ["flow_run_id"])
    _add_run_id("documents")
    _add_run_id("reports")

    if connection.dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE facts ADD COLUMN state TEXT "
            f"CONSTRAINT ck_facts_state CHECK (state IN ({_quoted(('value', 'blank', 'unreadable'))}))"
        )
    else:
        op.add_column("facts", sa.Column("state", sa.Text(), nullable=True))
    # Cells loaded before 0006: the parser's own rule (parsers/values.py) on the kept raw text.
    op.execute(
        "UPDATE facts SET state = CASE WHEN value IS NOT NULL THEN 'value' "
        f"WHEN TRIM(raw) IN ({_quoted(NULL_MARKERS)}) THEN 'blank' ELSE 'unreadable' END"
    )
    _add_checks(connection)
    _settle_duplicates(connection)
    op.create_index(
        "uq_reports_current_agency_id_year",
        "reports",
        ["agency_id", "year"],
        unique=True,
        postgresql_where=sa.text("is_current AND agency_id IS NOT NULL"),
        sqlite_where=sa.text("is_current AND agency_id IS NOT NULL"),
    )
    op.create_index(
        "uq_reports_current_agency_year",
        "reports",
        ["agency", "year"],
        unique=True,
        postgresql_where=sa.text("is_current AND agency_id IS NULL AND agency IS NOT NULL"),
        sqlite_where=sa.text("is_current AND agency_id IS NULL AND agency IS NOT NULL"),
    )
    op.execute(V_APPLICATIONS)
    op.execute(V_CHECK_FAILURES)
    op.execute(V_KEY_SERIES)
    for _, sql in NEW_VIEWS:
        op.execute(sql)
    if connection.dialect.name == "postgresql":
        _comment_on(connection)


def downgrade() -> None:
    from importlib import import_module

    connection = op.get_bind()
    for view, _ in reversed(NEW_VIEWS):
        op.execute(f"DROP VIEW {view}")
    for view in ("v_key_series", "v_check_failures", "v_applications"):
        op.execute(f"DROP VIEW {view}")
    op.drop_index("uq_reports_current_agency_year", table_name="reports")
    op.drop_index("uq_reports_current_agency_id_year", table_name="reports")
    _drop_checks(connection)
    sqlite = connection.dialect.name == "sqlite"
    op.execute("ALTER TABLE facts DROP COLUMN state")
    for table in ("reports", "documents"):
        op.drop_index(f"ix_{table}_run_id", table_name=table)
        if not sqlite:
            op.drop_constraint(f"fk_{table}_run_id_runs", table, type_="foreignkey")
        # Native DROP COLUMN (SQLite 3.35+), not a batch copy: see 0003.
        op.execute(f"ALTER TABLE {table} DROP COLUMN run_id")
    op.drop_index("ix_runs_flow_run_id", table_name="runs")
    op.drop_table("runs")
    # The views as 0005 left them.
    agencies = import_module("nianbao.schema.migrations.versions.0003_agencies")
    provenance = import_module("nianbao.schema.migrations.versions.0005_fact_provenance")
    op.execute(agencies.V_APPLICATIONS)
    op.execute(agencies.V_CHECK_FAILURES)
    op.execute(provenance.V_KEY_SERIES)
