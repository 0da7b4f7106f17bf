"""The data-quality report: what the warehouse holds and how far its numbers can be trusted.

`gather()` reads the figures from the BI views (the same SQL a BI tool would run);
`render_html()` makes one self-contained page — charts are inline SVG drawn here, no script and
no network, so it opens offline and in a mail client; `render_markdown()` gives the same figures
as tables for a Prefect artifact. Library code: the CLI and the flows call it.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, text

RULES = ("R1", "R2", "R3", "R4", "R5", "R6")
LEVELS = ("国家", "省", "市", "县", "乡")
# Table 三's outcome rows in groups, for the shares of outcomes (the sub-rows of a group add
# up to it; other_handling's 2021 sub-rows are left out, their parent row carries the total).
OUTCOME_GROUPS = {
    "granted": ("granted",),
    "partially_granted": ("partially_granted",),
    "denied": tuple(
        f"denied.{code}"
        for code in (
            "state_secret",
            "prohibited_by_law",
            "security_stability",
            "third_party",
            "internal_affairs",
            "process_information",
            "enforcement_files",
            "query_matters",
        )
    ),
    "unavailable": (
        "unavailable.not_held",
        "unavailable.needs_creation",
        "unavailable.still_unclear",
    ),
    "not_processed": tuple(
        f"not_processed.{code}"
        for code in ("petition", "repeated", "publications", "excessive", "confirmation")
    ),
    "other_handling": ("other_handling",),
}
REVIEW_OUTCOMES = ("upheld", "corrected", "other", "pending")
WORST_REPORTS = 20
LARGEST_CHANGES = 20
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f")


@dataclass
class QualityData:
    """The figures of the report; each chart's data is a category -> {series: number} map."""

    generated_at: str
    totals: dict[str, int]
    reports_by_year: dict[str, dict[str, float]] = field(default_factory=dict)
    reports_by_region: dict[str, dict[str, float]] = field(default_factory=dict)
    failure_rate_by_year: dict[str, dict[str, float]] = field(default_factory=dict)
    failure_rate_by_level: dict[str, dict[str, float]] = field(default_factory=dict)
    outcome_share_by_year: dict[str, dict[str, float]] = field(default_factory=dict)
    review_litigation: dict[str, dict[str, float]] = field(default_factory=dict)
    findings_by_code: dict[str, dict[str, float]] = field(default_factory=dict)
    worst_reports: list[dict[str, Any]] = field(default_factory=list)
    largest_changes: list[dict[str, Any]] = field(default_factory=list)
    scope: str = "the warehouse"  # or "run N", "runs N, M": the reports those runs loaded


def _rows(connection: Connection, sql: str, scope: _Scope) -> list[dict[str, Any]]:
    return [dict(row) for row in connection.execute(scope.statement(sql)).mappings()]


@dataclass(frozen=True)
class _Scope:
    """The reports and documents a figure counts: the whole warehouse, or some runs'."""

    run_ids: tuple[int, ...] | None = None
    # PostgreSQL: a view is read a report of the runs at a time (see `view`).
    lateral: bool = False

    def statement(self, sql: str) -> TextClause:
        """`sql`, with the runs bound when the scope has them: then its conditions (`reports`,
        `documents`, `view`) name `:runs`, a list of run ids, one bound parameter each. A query
        of a scope with runs that does not name them is an error (SQLAlchemy refuses the bind)."""
        statement = text(sql)
        if self.run_ids is None:
            return statement
        return statement.bindparams(bindparam("runs", list(self.run_ids), expanding=True))

    def reports(self, column: str) -> str:
        """A condition to AND: the report in `column` was loaded by one of the runs."""
        if self.run_ids is None:
            return "1 = 1"
        return f"{column} IN (SELECT id FROM reports WHERE run_id IN :runs)"

    def view(self, name: str, alias: str | None = None) -> str:
        """The view `name` as a FROM item named `alias` (or `name`): its rows of the runs'
        reports. On PostgreSQL, read a report at a time: a LATERAL subquery given the report's
        id (`OFFSET 0` keeps it from being flattened back into a join), so the id reaches the
        view's grouped and united subqueries as a value and they read that report's rows by
        index. Given as a join condition instead (`reports`), it cannot reach inside them, and
        every read of `v_reports` or `v_year_over_year` scanned the whole warehouse's facts."""
        alias = alias or name
        if self.run_ids is None:
            return f"{name} {alias}"
        if not self.lateral:
            return f"(SELECT * FROM {name} WHERE {self.reports('report_id')}) {alias}"
        return (
            f"(SELECT v.* FROM reports s CROSS JOIN LATERAL"
            f" (SELECT * FROM {name} WHERE report_id = s.id OFFSET 0) v"
            f" WHERE s.run_id IN :runs) {alias}"
        )

    @property
    def documents(self) -> str:
        return "1 = 1" if self.run_ids is None else "run_id IN :runs"


def _scope_name(run_ids: tuple[int, ...] | None) -> str:
    if run_ids is None:
        return "the warehouse"
    if len(run_ids) == 1:
        return f"run {run_ids[0]}"
    return f"runs {', '.join(map(str, run_ids))}" if run_ids else "no run (nothing loaded)"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, Decimal) else float(value or 0)


def _label(value: Any) -> str:
    return "unknown" if value is None else str(value)


def gather(engine: Engine, run_id: int | Sequence[int] | None = None) -> QualityData:
    """Every figure of the report, from the views of the warehouse at `engine`.

    With `run_id` (or several: a harvest's ingest runs), the figures of the documents and
    reports those runs wrote only: what a run publishes then costs the size of the run, not of
    the warehouse.
    """
    run_ids = (run_id,) if isinstance(run_id, int) else None if run_id is None else tuple(run_id)
    postgresql = engine.dialect.name == "postgresql"
    scope = _Scope(run_ids, lateral=postgresql)
    with engine.connect() as connection:
        if postgresql:
            # These reads are small and go by index, but the planner's estimates for the views'
            # per-report subqueries grow with the warehouse past jit_above_cost: compiling them
            # took up to 1.2 s of a 5-ms query (5,000 reports). The setting ends with the
            # transaction, before the connection goes back to the pool.
            connection.exec_driver_sql("SET LOCAL jit = off")
        data = _gather(connection, scope)
    return data


def _gather(connection: Connection, scope: _Scope) -> QualityData:
    documents, reports = scope.documents, scope.view("v_reports")
    totals = _rows(
        connection,
        f"SELECT (SELECT COUNT(*) FROM documents WHERE {documents}) AS documents,"
        f" (SELECT COUNT(*) FROM documents WHERE status = 'failed' AND {documents})"
        " AS failed_documents,"
        f" (SELECT COUNT(*) FROM documents WHERE status = 'not_a_report' AND {documents})"
        " AS not_reports,"
        f" (SELECT COUNT(*) FROM {reports}) AS current_reports,"
        f" (SELECT COUNT(*) FROM {reports} WHERE failed_checks > 0) AS reports_failing_rules,"
        f" (SELECT COUNT(*) FROM {reports} WHERE findings > 0) AS reports_with_findings,"
        " (SELECT COUNT(*) FROM runs) AS runs",
        scope,
    )[0]
    data = QualityData(
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        totals={k: int(v or 0) for k, v in totals.items()},
        scope=_scope_name(scope.run_ids),
    )
    _reports_by_year_and_region(connection, data, scope)
    _rule_failure_rates(connection, data, scope)
    _outcome_shares(connection, data, scope)
    sums_sql = ", ".join(f"SUM({c}) AS {c}" for c in REVIEW_OUTCOMES)
    for row in _rows(
        connection,
        f"SELECT proceeding, {sums_sql} FROM {scope.view('v_review_litigation')}"
        " GROUP BY proceeding",
        scope,
    ):
        data.review_litigation[row["proceeding"]] = {c: _number(row[c]) for c in REVIEW_OUTCOMES}
    for row in _rows(
        connection,
        f"SELECT g.code, COUNT(*) AS n FROM findings g JOIN {scope.view('v_reports', 'v')}"
        " ON v.report_id = g.report_id GROUP BY g.code ORDER BY n DESC, g.code",
        scope,
    ):
        data.findings_by_code[row["code"]] = {"findings": row["n"]}
    data.worst_reports = _rows(
        connection,
        "SELECT report_id, agency, year, template, source, failed_rules, failed_checks, findings,"
        f" unreadable_cells, blank_cells, cells FROM {reports}"
        " WHERE failed_checks > 0 OR findings > 0 OR unreadable_cells > 0"
        " ORDER BY failed_rules DESC, failed_checks DESC, findings DESC, unreadable_cells DESC,"
        f" report_id LIMIT {WORST_REPORTS}",
        scope,
    )
    data.largest_changes = _rows(
        connection,
        "SELECT agency_canonical, year, figure, previous_figure, previous_value, value, change,"
        f" change_ratio FROM {scope.view('v_year_over_year')}"
        " WHERE change IS NOT NULL AND change <> 0"
        " ORDER BY ABS(change) DESC, agency_canonical, year, figure"
        f" LIMIT {LARGEST_CHANGES}",
        scope,
    )
    return data


def _reports_by_year_and_region(connection: Connection, data: QualityData, scope: _Scope) -> None:
    """Current reports by year × template and by province × level."""
    for row in _rows(
        connection,
        f"SELECT year, template, COUNT(*) AS n FROM {scope.view('v_reports')}"
        " GROUP BY year, template",
        scope,
    ):
        data.reports_by_year.setdefault(_label(row["year"]), {})[_label(row["template"])] = row["n"]
    data.reports_by_year = dict(sorted(data.reports_by_year.items()))
    for row in _rows(
        connection,
        f"SELECT province, level, COUNT(*) AS n FROM {scope.view('v_reports')}"
        " GROUP BY province, level",
        scope,
    ):
        data.reports_by_region.setdefault(_label(row["province"]), {})[_label(row["level"])] = row[
            "n"
        ]
    data.reports_by_region = dict(
        sorted(data.reports_by_region.items(), key=lambda item: -sum(item[1].values()))
    )


def _rule_failure_rates(connection: Connection, data: QualityData, scope: _Scope) -> None:
    """Each rule's failure rate by year and by level."""
    # A rule's failure rate: reports where it failed / reports where it was evaluated.
    per_rule = _rows(
        connection,
        "SELECT v.year, v.level, c.rule, COUNT(DISTINCT c.report_id) AS evaluated,"
        " COUNT(DISTINCT CASE WHEN NOT c.ok THEN c.report_id END) AS failed"
        f" FROM checks c JOIN {scope.view('v_reports', 'v')} ON v.report_id = c.report_id"
        " GROUP BY v.year, v.level, c.rule",
        scope,
    )
    for key, target in (("year", data.failure_rate_by_year), ("level", data.failure_rate_by_level)):
        evaluated: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        failed: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for row in per_rule:
            evaluated[_label(row[key])][row["rule"]] += row["evaluated"]
            failed[_label(row[key])][row["rule"]] += row["failed"]
        order = (
            sorted(evaluated)
            if key == "year"
            else [lv for lv in (*LEVELS, "unknown") if lv in evaluated]
        )
        for category in order:
            target[category] = {
                rule: failed[category][rule] / evaluated[category][rule]
                for rule in RULES
                if evaluated[category][rule]
            }


def _outcome_shares(connection: Connection, data: QualityData, scope: _Scope) -> None:
    """The share of each outcome group among the applications processed, by year."""
    outcome_of = {row: group for group, rows in OUTCOME_GROUPS.items() for row in rows}
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in _rows(
        connection,
        # A plain join: its conditions reach `facts` and its index as they are (`view` would
        # hand every fact of the runs' reports up to be filtered).
        "SELECT year, row_code, SUM(value) AS n FROM v_facts WHERE is_current"
        " AND table_code = 'applications' AND col_code = 'total' AND state = 'value'"
        f" AND {scope.reports('report_id')} GROUP BY year, row_code",
        scope,
    ):
        if row["row_code"] in outcome_of:
            sums[_label(row["year"])][outcome_of[row["row_code"]]] += _number(row["n"])
    for year in sorted(sums):
        whole = sum(sums[year].values())
        if whole:
            data.outcome_share_by_year[year] = {
                group: sums[year][group] / whole for group in OUTCOME_GROUPS if group in sums[year]
            }


# --- charts: inline SVG ------------------------------------------------------------------------


def bar_chart(
    title: str,
    data: dict[str, dict[str, float]],
    *,
    stacked: bool = False,
    percent: bool = False,
    order: tuple[str, ...] = (),
) -> str:
    """A vertical bar chart (grouped, or stacked) as a <figure> holding inline SVG.

    Every bar is a <rect class="bar"> with a <title> giving its figure, so a reader hovering it
    (and a test) sees the number.
    """
    seen = {s for values in data.values() for s in values}
    series = [s for s in order if s in seen]
    series += [s for values in data.values() for s in values if s not in series]
    series = list(dict.fromkeys(series))
    if not data or not series:
        return (
            f'<figure class="chart empty"><figcaption>{html.escape(title)}</figcaption>'
            "<p>No data yet.</p></figure>"
        )
    width, height, left, bottom, top = 760, 320, 90, 90, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(values.values()) for values in data.values()]
    peak = max([*(totals if stacked else [v for vs in data.values() for v in vs.values()]), 0])
    peak = 1.0 if percent and stacked else (peak or 1.0)
    slot = plot_w / len(data)
    bar_w = slot * 0.8 / (1 if stacked else len(series))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
    ]
    for tick in range(5):
        share = tick / 4
        y = top + plot_h * (1 - share)
        label = f"{share * peak:.0%}" if percent else _short(share * peak)
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{label}</text>'
        )
    for i, (category, values) in enumerate(data.items()):
        x0 = left + slot * i + slot * 0.1
        base = 0.0
        for j, name in enumerate(series):
            value = values.get(name)
            if value is None:
                continue
            h = plot_h * value / peak
            x = x0 if stacked else x0 + bar_w * j
            y = top + plot_h - (base if stacked else 0) - h
            shown = f"{value:.1%}" if percent else _short(value)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{max(h, 0):.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{html.escape(category)} · {html.escape(name)}: {shown}</title></rect>"
            )
            if stacked:
                base += h
        parts.append(
            f'<text x="{left + slot * (i + 0.5):.1f}" y="{top + plot_h + 14}" class="cat" '
            f'text-anchor="end" transform="rotate(-35 {left + slot * (i + 0.5):.1f} '
            f'{top + plot_h + 14})">{html.escape(category)}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{PALETTE[j % len(PALETTE)]}"></i>'
        f"{html.escape(name)}</span>"
        for j, name in enumerate(series)
    )
    return (
        f'<figure class="chart" data-categories="{len(data)}" data-series="{len(series)}">'
        f"<figcaption>{html.escape(title)}</figcaption>{''.join(parts)}"
        f'<div class="legend">{legend}</div></figure>'
    )


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2g}"


def _table(rows: list[dict[str, Any]], empty: str) -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float | Decimal) and not float(value).is_integer():
        return f"{float(value):.3g}"
    if isinstance(value, float | Decimal):
        return f"{float(value):.0f}"
    return str(value)


_STYLE = """
body{font-family:"Noto Sans CJK SC","Noto Sans",sans-serif;margin:2em auto;max-width:1100px;
color:#222}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
.totals{display:flex;flex-wrap:wrap;gap:1em}.totals div{background:#f3f5f8;padding:.6em 1em;
border-radius:4px}.totals b{display:block;font-size:1.4em}figure{margin:1em 0}
figcaption{font-weight:bold;margin-bottom:.3em}.grid{stroke:#ddd}.tick,.cat{font-size:11px;
fill:#444}.legend{font-size:12px}.key{margin-right:1em}.key i{display:inline-block;width:10px;
height:10px;margin-right:4px}table{border-collapse:collapse;font-size:13px}td,th{border:1px
solid #ddd;padding:3px 6px;text-align:left}th{background:#f3f5f8}
"""


def render_html(data: QualityData) -> str:
    """One self-contained HTML page: inline CSS and SVG, no script, nothing fetched."""
    totals = "".join(
        f"<div><b>{value}</b>{html.escape(name.replace('_', ' '))}</div>"
        for name, value in data.totals.items()
    )
    sections = [
        (
            "Reports",
            bar_chart("Current reports per year, by template", data.reports_by_year, stacked=True)
            + bar_chart(
                "Current reports per province, by level",
                data.reports_by_region,
                stacked=True,
                order=(*LEVELS, "unknown"),
            ),
        ),
        (
            "Rules R1–R6",
            bar_chart(
                "Failure rate of each rule, by year (reports failing / reports checked)",
                data.failure_rate_by_year,
                percent=True,
                order=RULES,
            )
            + bar_chart(
                "Failure rate of each rule, by level",
                data.failure_rate_by_level,
                percent=True,
                order=RULES,
            ),
        ),
        (
            "Applications",
            bar_chart(
                "Outcomes of applications by year (table 三, 总计 column, printed values)",
                data.outcome_share_by_year,
                stacked=True,
                percent=True,
            ),
        ),
        (
            "Reviews and lawsuits",
            bar_chart(
                "Administrative reviews and lawsuits by outcome (table 四)", data.review_litigation
            ),
        ),
        ("Findings", bar_chart("Findings by code (current reports)", data.findings_by_code)),
        ("Worst reports", _table(data.worst_reports, "No report fails a rule or has a finding.")),
        (
            "Largest changes from the previous year",
            _table(
                data.largest_changes, "No agency has two consecutive years with printed figures."
            ),
        ),
    ]
    body = "".join(
        f"<section><h2>{html.escape(t)}</h2>{content}</section>" for t, content in sections
    )
    return (
        '<!DOCTYPE html><html lang="zh-Hans"><head><meta charset="utf-8">'
        "<title>nianbao data quality</title>"
        f"<style>{_STYLE}</style></head><body><h1>nianbao data quality</h1>"
        f'<p>Generated {html.escape(data.generated_at)}.</p><div class="totals">{totals}</div>'
        f"{body}</body></html>\n"
    )


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_none_\n"
    head = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    return head + "".join(
        "| " + " | ".join(_cell(v).replace("|", "\\|") for v in row.values()) + " |\n"
        for row in rows
    )


def _grid(data: dict[str, dict[str, float]], name: str, percent: bool = False) -> str:
    series = list(dict.fromkeys(s for values in data.values() for s in values))
    rows = [
        {name: category}
        | {
            s: (f"{values[s]:.1%}" if percent else _cell(values[s])) if s in values else ""
            for s in series
        }
        for category, values in data.items()
    ]
    return _markdown_table(rows)


def render_markdown(data: QualityData) -> str:
    """The report's figures as Markdown tables (a Prefect artifact shows Markdown, not SVG)."""
    return "\n".join(
        [
            f"# nianbao data quality of {data.scope} ({data.generated_at})",
            _markdown_table([data.totals]),
            "## Current reports per year, by template",
            _grid(data.reports_by_year, "year"),
            "## Rule failure rate by year",
            _grid(data.failure_rate_by_year, "year", percent=True),
            "## Rule failure rate by level",
            _grid(data.failure_rate_by_level, "level", percent=True),
            "## Outcomes of applications by year",
            _grid(data.outcome_share_by_year, "year", percent=True),
            "## Reviews and lawsuits by outcome",
            _grid(data.review_litigation, "proceeding"),
            "## Findings by code",
            _grid(data.findings_by_code, "code"),
            "## Worst reports",
            _markdown_table(data.worst_reports),
            "## Largest changes from the previous year",
            _markdown_table(data.largest_changes),
        ]
    )
