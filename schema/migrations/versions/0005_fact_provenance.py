"""Fact provenance for template 2008 and the key series from 2008 to today.

Facts read from a pre-2019 report say where they stand: `source` (prose | table), `evidence`
(the sentence or printed 统计表 row) and `section`. Facts of the national tables leave them
NULL. `v_key_series` lines up the figures whose meaning is the same across templates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVENANCE_COLUMNS = ("source", "evidence", "section")

# Frozen copies of the codes (template.md, docs/template-2008.md): a migration must not change
# meaning when the live registry does. Template 2008 rows -> series.
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
_FREEFORM_ROWS = ", ".join(f"'{row}'" for row, _ in FREEFORM_SERIES)

# Plain SQL that SQLite and PostgreSQL both accept. National tables: 三 new_received/total,
# 四 review/total, and the two litigation groups' totals added. Template 2008: the 统计表's
# year column where printed, else the prose figure.
V_KEY_SERIES = f"""
CREATE VIEW v_key_series AS
SELECT r.id AS report_id, r.agency, r.region, r.year, r.template, s.series, s.value, s.source
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
WHERE r.is_current
"""


def upgrade() -> None:
    for name in PROVENANCE_COLUMNS:
        op.add_column("facts", sa.Column(name, sa.Text(), nullable=True))
    op.execute(V_KEY_SERIES)


def downgrade() -> None:
    op.execute("DROP VIEW v_key_series")
    for name in PROVENANCE_COLUMNS:
        # SQLite (>= 3.35) and PostgreSQL both drop a column in place; no table copy needed.
        op.execute(f"ALTER TABLE facts DROP COLUMN {name}")
