"""`v_year_over_year` on PostgreSQL: the previous year's figures read for the previous report
only, so that reading the view for some reports costs those reports, not the warehouse.

In 0006 the previous year's figures are a join to the union of every report's figures, which
PostgreSQL cannot restrict to the previous report: one of the union's parts is grouped (the
lawsuits' sum in `v_key_series`), and a join condition never reaches inside a grouped subquery.
So every read of the view, even of one report's rows, scanned `facts` ten times over (1.4 s for
1,200 reports, 3.9 s for 5,000, in a run's quality report). Here they are a LATERAL subquery
given the previous report's id and the figure paired with the current one; `OFFSET 0` keeps
PostgreSQL from flattening it back into the join, so the id reaches every part of the union as
a value and each reads the report's rows through the `facts` index. The view's rows and columns
are the same; SQLite (no LATERAL) keeps 0006's definition.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from importlib import import_module

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0006's parts of the view (frozen there): the figures, their pairing, the agency join.
_bi = import_module("nianbao.schema.migrations.versions.0006_bi_views")

V_YEAR_OVER_YEAR = f"""
CREATE OR REPLACE VIEW v_year_over_year AS
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
{_bi._FIGURES}
) cur ON cur.report_id = r.id
{_bi._AGENCY_JOIN}
LEFT JOIN reports p ON p.agency_id = r.agency_id AND p.year = r.year - 1 AND p.is_current
LEFT JOIN LATERAL (
  SELECT x.figure, x.value, x.state FROM (
{_bi._FIGURES}
  ) x
  WHERE x.report_id = p.id AND x.figure = CASE cur.figure {_bi._PAIRED} END
  OFFSET 0
) prev ON true
WHERE r.is_current AND r.agency_id IS NOT NULL
  AND cur.figure IN ({_bi._quoted([figure for figure, _ in _bi.YEAR_FIGURES])})
"""


def upgrade() -> None:
    # CREATE OR REPLACE keeps the view's comments (0006's COMMENT ON).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(V_YEAR_OVER_YEAR)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_bi.V_YEAR_OVER_YEAR.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
