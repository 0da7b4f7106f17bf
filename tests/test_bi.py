"""The BI layer on both backends: the README's queries, cell states, views, constraints, runs,
the export read back by DuckDB, and the quality report rendered by a real headless Chromium.

The warehouse holds the six documents of samples/, parsed by the real parser. Expected numbers
were worked out by hand from the gold files (samples/*.canon.json, *.gold.json,
metadata.gold.json), never from the code under test:

- 淮安市人民政府 2024 (市, 320800 江苏省): 三 new_received/total 3119, granted/total 1362,
  total_processed/total 3050; 四 review/total 351 (corrected 64), litigation totals 26 + 20;
  二 fees 96171.6 万元. No rule fails (its gold lists no consistency finding).
- 上海市人民政府办公厅 2019 (省, 310000 上海市): new_received/total 859, granted/total printed
  blank, total_processed/total 805; review/total 7 (corrected blank), litigation_direct 9,
  litigation_after_review blank; procurement amount 251000元. Its gold lists 12 consistency
  findings: the 总计 column's sum against （七）总计 (R2) and 11 blank 总计 cells (R3).
- 互助县就业服务局 2023 (县, 630223 青海省), four formats of one report, one current: zeros.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError

from nianbao.parsers.report import parse_file
from nianbao.schema.db import current_revision, downgrade, engine_for, upgrade
from nianbao.schema.export import DATASETS, export
from nianbao.schema.load import load_document
from nianbao.schema.quality import gather, render_html
from nianbao.schema.runs import finish_run, start_run

from .conftest import new_database
from .helpers import REAL, ROOT, SAMPLES

README = (ROOT / "README.md").read_text("utf-8")
NIANBAO = str(Path(sys.executable).with_name("nianbao"))
SAMPLE_FILES = (
    "01_huaian_shizhengfu_2024.pdf",
    "04_shanghai_szfbgt_2019.html",
    "huzhu-employment-2023.docx",
    "huzhu-employment-2023.html",
    "huzhu-employment-2023.pdf",
    "huzhu-employment-2023.txt",
)
HUAIAN, SHANGHAI, HUZHU = "淮安市人民政府", "上海市人民政府办公厅", "互助县就业服务局"


@cache
def parsed_samples() -> tuple[dict[str, Any], ...]:
    return tuple(parse_file(str(SAMPLES / name)).to_json() for name in SAMPLE_FILES)


def load_samples(engine: Engine) -> int:
    run_id = start_run(engine, "test")
    outcomes = [load_document(engine, doc, run_id=run_id).value for doc in parsed_samples()]
    finish_run(engine, run_id, {"documents_seen": 6, "loaded": outcomes.count("loaded")}, False)
    return run_id


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A new warehouse holding the samples, for a test that changes it."""
    engine = engine_for(db_url)
    load_samples(engine)
    yield engine
    engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One warehouse holding the samples per backend, shared by the tests that only read it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bi') / 'warehouse.db'}"
    else:
        url = new_database(request.getfixturevalue("pg_url"))
    upgrade(url)
    engine = engine_for(url)
    load_samples(engine)
    yield engine
    engine.dispose()


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(_plain(v) for v in row) for row in conn.execute(text(sql))]


def _plain(value: Any) -> Any:
    # PostgreSQL returns NUMERIC as Decimal, SQLite as int or float: compare as numbers.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def readme_query(comment: str) -> str:
    """The README's SQL block that opens with `-- comment`: the README's text is what runs."""
    for block in re.findall(r"```sql\n(.*?)```", README, re.S):
        if block.startswith(f"-- {comment}"):
            return block
    raise AssertionError(f"no README query opening with -- {comment}")


# --- the README's examples --------------------------------------------------------------------


def test_readme_granted_share_leaves_out_what_is_not_printed(warehouse: Engine) -> None:
    found = rows(warehouse, readme_query("share of applications granted in full, by year"))
    # 2019: 上海's granted/total is printed blank, so it is left out, not divided as 0/805.
    # 2023: 互助 prints 0 of 0: no share. 2024: 淮安 1362 / 3050.
    assert [(year, reports) for year, _, reports in found] == [(2023, 1), (2024, 1)]
    assert found[0][1] is None
    assert found[1][1] == pytest.approx(1362 / 3050)


def test_readme_lists_what_the_share_leaves_out(warehouse: Engine) -> None:
    found = rows(warehouse, readme_query("what the share leaves out, and why"))
    assert found == [(2019, SHANGHAI, "blank", "value")]


def test_readme_key_series_by_year(warehouse: Engine) -> None:
    found = rows(warehouse, readme_query("requests, reviews and lawsuits per year, 2008–2024"))
    # 上海 2019 lawsuits: 9 direct, after review printed blank.
    assert found == [(2019, 859, 7, 9), (2023, 0, 0, 0), (2024, 3119, 351, 26 + 20)]


def test_readme_received_by_province_and_level(warehouse: Engine) -> None:
    found = rows(warehouse, readme_query("applications received by year, province and level"))
    assert found == [
        (2019, "上海市", "省", 859),
        (2023, "青海省", "县", 0),
        (2024, "江苏省", "市", 3119),
    ]


def test_readme_worst_reports(warehouse: Engine) -> None:
    found = rows(warehouse, readme_query("reports whose own numbers do not add up, worst first"))
    assert found == [(SHANGHAI, 2019, 12)]


def test_readme_one_row_per_report(warehouse: Engine) -> None:
    found = rows(warehouse, readme_query("one row per report: who, when, key totals, quality"))
    assert found == [
        (SHANGHAI, 2019, "2019", "310000", 859, 805, None, 7, 9, 2),
        (HUZHU, 2023, "2021", "630223", 0, 0, 0, 0, 0, 0),
        (HUAIAN, 2024, "2021", "320800", 3119, 3050, 1362, 351, 46, 0),
    ]


def test_readme_money_in_one_unit(warehouse: Engine) -> None:
    found = rows(
        warehouse, readme_query("money of table 二 in 元, with the unit it was printed in")
    )
    assert found == [
        (SHANGHAI, 2019, "procurement", 251000, "元"),
        (HUZHU, 2023, "fees", 0, "万元"),
        (HUAIAN, 2024, "fees", pytest.approx(961_716_000), "万元"),
    ]


def test_readme_review_correction_rate(warehouse: Engine) -> None:
    found = rows(
        warehouse, readme_query("share of administrative reviews that corrected the decision")
    )
    # 上海 prints corrected blank: left out. 互助 0 of 0; 淮安 64 of 351.
    assert [(year, reviews) for year, _, reviews in found] == [(2023, 0), (2024, 351)]
    assert found[0][1] is None and found[1][1] == pytest.approx(64 / 351)


# --- cell states and views ----------------------------------------------------------------------


def test_cell_states_keep_printed_blank_and_absent_apart(warehouse: Engine) -> None:
    found = dict(
        rows(
            warehouse,
            "SELECT agency, granted_state || '/' || carried_forward_state || '/' || "
            "other_handling_fee_unpaid_state FROM v_applications WHERE applicant = 'total'",
        )
    )
    # 上海 (2019 template) and 互助 (one 其他处理 row) print no other_handling sub-rows: absent.
    assert found == {
        HUAIAN: "value/value/value",
        SHANGHAI: "blank/value/absent",
        HUZHU: "value/value/absent",
    }
    states = dict(
        rows(warehouse, "SELECT state, COUNT(*) FROM v_facts WHERE is_current GROUP BY state")
    )
    blanks = sum(1 for doc in parsed_samples()[:2] for f in doc["facts"] if f["value"] is None)
    huzhu_blanks = sum(1 for f in parsed_samples()[2]["facts"] if f["value"] is None)
    assert states.get("blank", 0) == blanks + huzhu_blanks
    assert "unreadable" not in states


def test_row_that_did_not_load_is_absent(db_url: str) -> None:
    engine = engine_for(db_url)
    try:
        shanghai = dict(parsed_samples()[1])
        shanghai["facts"] = [f for f in shanghai["facts"] if f["row"] != "total_processed"]
        load_document(engine, shanghai)
        assert rows(
            engine,
            "SELECT total_processed, total_processed_state FROM v_applications "
            "WHERE applicant = 'natural_person'",
        ) == [(None, "absent")]
    finally:
        engine.dispose()


def test_views_per_table(warehouse: Engine) -> None:
    review = rows(
        warehouse,
        "SELECT proceeding, upheld, corrected, corrected_state, total FROM v_review_litigation "
        f"WHERE agency = '{SHANGHAI}' ORDER BY proceeding",
    )
    assert review[2] == ("review", 5, None, "blank", 7)
    assert [r[0] for r in review] == ["litigation_after_review", "litigation_direct", "review"]
    active = rows(
        warehouse,
        "SELECT item, made, made_state, issued_state FROM v_active_disclosure "
        f"WHERE agency = '{HUAIAN}' AND item = 'rules'",
    )
    # 淮安 2024 is on the 2021 template: 本年制发件数 (issued), no 本年新制作数量 (made).
    assert active == [("rules", None, "absent", "value")]
    assert rows(warehouse, "SELECT COUNT(*), COUNT(DISTINCT report_id) FROM v_reports") == [(3, 3)]


def _year_before(report: dict[str, Any]) -> dict[str, Any]:
    """The report of the same agency a year earlier: another document, carried_forward/total
    30."""
    before = dict(report, sha256="0" * 64, year=report["year"] - 1)
    before["facts"] = [
        dict(f, value=30, raw="30")
        if (f["table"], f["row"], f["col"]) == ("applications", "carried_forward", "total")
        else f
        for f in report["facts"]
    ]
    return before


def test_year_over_year_compares_with_the_previous_current_report(db_url: str) -> None:
    engine = engine_for(db_url)
    try:
        huaian = parsed_samples()[0]
        before = _year_before(huaian)
        load_document(engine, before)
        load_document(engine, huaian)
        found = rows(
            engine,
            "SELECT figure, previous_figure, value, previous_value, change FROM v_year_over_year "
            "WHERE year = 2024 AND figure IN ('carried_over', 'applications_received') "
            "ORDER BY figure",
        )
        # 淮安 2024 carried over 34 (gold); this 2023 carried 30 forward: R5's gap is 4.
        assert found == [
            ("applications_received", "applications_received", 3119, 3119, 0),
            ("carried_over", "carried_forward", 34, 30, 4),
        ]
        html = render_html(gather(engine))
        assert "Largest changes from the previous year" in html and ">carried_over<" in html
    finally:
        engine.dispose()


def _facts_read_by_other_than_report(plan: dict[str, Any]) -> list[str]:
    """The reads of `facts` in an EXPLAIN (FORMAT JSON) plan not given a report id."""
    found = []
    if plan.get("Relation Name") == "facts" and "report_id =" not in plan.get("Index Cond", ""):
        found.append(f"{plan['Node Type']} {plan.get('Index Cond', plan.get('Filter', ''))}")
    for child in plan.get("Plans", []):
        found += _facts_read_by_other_than_report(child)
    return found


@pytest.mark.postgres
def test_a_runs_quality_report_reads_its_reports_facts_by_index(pg_url: str) -> None:
    """Regression: the report of a run read `v_year_over_year` and `v_reports` through a join
    condition that could not reach inside their grouped subqueries, so every query scanned
    every fact of the warehouse (5 s for a run of 1,200 documents)."""
    url = new_database(pg_url)
    upgrade(url)
    engine = engine_for(url)
    statements: list[tuple[str, Any]] = []
    try:
        huaian = parsed_samples()[0]
        before = _year_before(huaian)
        load_document(engine, before, run_id=start_run(engine, "test"))
        run_id = start_run(engine, "test")
        load_document(engine, huaian, run_id=run_id)

        def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            if statement.lstrip().startswith("SELECT"):
                statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        data = gather(engine, run_id)
        event.remove(engine, "before_cursor_execute", record)
        # Only the 2024 report is the run's; its carried_over (34) against the 2023 report's
        # carried_forward (30), loaded by another run, is a change of 4.
        assert data.totals["current_reports"] == 1 and data.scope == f"run {run_id}"
        assert {
            (row["year"], row["figure"], row["previous_figure"], row["value"], row["change"])
            for row in data.largest_changes
        } == {(2024, "carried_over", "carried_forward", 34, 4)}
        assert len(statements) == 9  # the report's queries
        with engine.connect() as connection:
            # Seq scans priced out: what the plan still reads without a report id, it must.
            connection.exec_driver_sql("SET enable_seqscan = off")
            for statement, parameters in statements:
                plan = connection.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + statement, parameters
                ).scalar_one()[0]["Plan"]
                assert _facts_read_by_other_than_report(plan) == [], statement
    finally:
        engine.dispose()


# --- constraints, runs, comments, migrations ------------------------------------------------------


def test_one_current_report_per_agency_and_year_is_enforced(warehouse: Engine) -> None:
    # The four 互助 documents: one current; making a second current breaks the unique index.
    assert rows(
        warehouse,
        f"SELECT COUNT(*), SUM(CASE WHEN is_current THEN 1 ELSE 0 END) FROM reports WHERE agency = '{HUZHU}'",
    ) == [(4, 1)]
    with pytest.raises(IntegrityError), warehouse.begin() as conn:
        conn.execute(text(f"UPDATE reports SET is_current = true WHERE agency = '{HUZHU}'"))


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("UPDATE reports SET level = '村'", "ck_reports_level"),
        ("UPDATE reports SET region_code = '3208'", "ck_reports_region_code"),
        ("UPDATE checks SET rule = 'R9'", "ck_checks_rule"),
        ("UPDATE facts SET state = 'missing'", "ck_facts_state"),
        ("UPDATE documents SET status = 'ok'", "ck_documents_status"),
    ],
)
def test_codes_are_checked(warehouse: Engine, sql: str, constraint: str) -> None:
    with pytest.raises(IntegrityError, match=constraint), warehouse.begin() as conn:
        conn.execute(text(sql))


def test_every_loaded_row_points_to_its_run(warehouse: Engine) -> None:
    assert rows(warehouse, "SELECT flow, state, documents_seen, loaded FROM runs") == [
        ("test", "completed", 6, 6)
    ]
    (run_id,) = rows(warehouse, "SELECT id FROM runs")[0]
    assert rows(warehouse, "SELECT DISTINCT run_id FROM reports") == [(run_id,)]
    assert rows(warehouse, "SELECT DISTINCT run_id FROM documents") == [(run_id,)]
    assert rows(warehouse, "SELECT DISTINCT run_id FROM v_reports") == [(run_id,)]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_views_and_columns_have_comments_on_postgresql(engine: Engine) -> None:
    found = dict(
        rows(
            engine,
            "SELECT c.relname || '.' || a.attname, col_description(c.oid, a.attnum) "
            "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE c.relname IN ('v_applications', 'v_reports') AND a.attnum > 0",
        )
    )
    assert "printed blank" in found["v_applications.granted_state"]
    assert found["v_reports.published"].startswith("the date the portal's listing gives")
    assert all(found[f"v_applications.{c}"] for c in ("agency_id", "applicant", "new_received"))
    assert rows(engine, "SELECT obj_description('v_reports'::regclass)")[0][0].startswith(
        "One row per current report"
    )


def test_downgrade_to_0005_keeps_the_reports(db_url: str, engine: Engine) -> None:
    engine.dispose()
    downgrade(db_url, "0005")
    assert current_revision(db_url) == "0005"
    again = engine_for(db_url)
    try:
        assert rows(again, "SELECT COUNT(*) FROM v_applications WHERE applicant = 'total'") == [
            (3,)
        ]
        engine.dispose()
        upgrade(db_url)
        # Cells loaded before 0006 get their state from the kept raw text.
        assert rows(
            again,
            "SELECT granted_state FROM v_applications WHERE agency = "
            f"'{SHANGHAI}' AND applicant = 'total'",
        ) == [("blank",)]
    finally:
        again.dispose()


# --- export and report ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_is_read_back_by_duckdb(warehouse: Engine, tmp_path: Path, fmt: str) -> None:
    written = {d.name: d for d in export(warehouse, tmp_path, fmt)}
    assert set(written) == set(DATASETS)
    reader = "read_parquet" if fmt == "parquet" else "read_csv"

    def read(name: str, sql: str) -> list[tuple]:
        source = f"{reader}('{tmp_path / name}/*/*.{fmt}', hive_partitioning = true)"
        return duckdb.sql(sql.format(source=source)).fetchall()

    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "year=2019",
        "year=2023",
        "year=2024",
    ]
    assert read("reports", "SELECT year, agency, granted FROM {source} ORDER BY year") == [
        (2019, SHANGHAI, None),
        (2023, HUZHU, 0),
        (2024, HUAIAN, 1362),
    ]
    # Every cell of every report, the three superseded 互助 copies included.
    facts = read(
        "facts", "SELECT COUNT(*), SUM(CASE WHEN is_current THEN 1 ELSE 0 END) FROM {source}"
    )
    assert facts == [(written["facts"].rows, 200 + 198 + 186)]
    assert written["facts"].rows == sum(len(doc["facts"]) for doc in parsed_samples())
    assert read(
        "applications",
        "SELECT granted_state FROM {source} WHERE year = 2019 AND applicant = 'total'",
    ) == [("blank",)]


def test_cli_export_and_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = engine_for(url)
    load_samples(engine)
    engine.dispose()
    out = tmp_path / "export"
    done = subprocess.run(
        [NIANBAO, "export", "--db", url, "--format", "parquet", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "reports: 3 rows, 3 files" in done.stdout
    bad = subprocess.run(
        [NIANBAO, "export", "--db", url, "--format", "xlsx", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "parquet, csv" in bad.stderr
    page = tmp_path / "quality.html"
    done = subprocess.run(
        [NIANBAO, "report", "--db", url, "--out", str(page)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "3 current reports" in done.stdout
    # Self-contained: no script, and nothing to fetch (no src, no href, no url()).
    html = page.read_text("utf-8")
    assert re.findall(r"<script|\bsrc=|\bhref=|url\(", html) == []


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (.ci/system-packages.sh installs it)")
    return found


def test_quality_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = engine_for(url)
    load_samples(engine)
    # And a report with findings (fused cells), so that every chart has data.
    load_document(engine, parse_file(str(REAL / "10_pingtan_2019.flat.txt")))
    page = tmp_path / "quality.html"
    page.write_text(render_html(gather(engine)), encoding="utf-8")
    engine.dispose()
    browser = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    # What the browser built: every chart is an SVG with bars, and each bar says its figure.
    charts = re.findall(r'<figure class="chart"[^>]*>(.*?)</figure>', dom.stdout, re.S)
    assert len(charts) == 7 and 'class="chart empty"' not in dom.stdout
    assert all(chart.count('<rect class="bar"') > 0 for chart in charts)
    # 四 review/corrected: 淮安 64, 上海 blank, 互助 0, 平潭 2019 0 (its table 四 prints 15
    # zeros); 2019 has two reports on the 2019 template: 上海 and 平潭.
    assert "review · corrected: 64</title>" in dom.stdout
    assert "2019 · 2019: 2</title>" in dom.stdout
    # 上海 heads the worst reports (two rules, 12 checks failed); 淮安's province has a bar.
    worst = dom.stdout.split("<h2>Worst reports</h2>")[1]
    assert re.search(r"<tr><td>\d+</td><td>上海市人民政府办公厅</td><td>2019</td>", worst)
    assert "江苏省 · 市: 1</title>" in dom.stdout
    assert "CONSOLE" not in dom.stderr and "Uncaught" not in dom.stderr
    shot = tmp_path / "quality.png"
    subprocess.run(
        [*browser, "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000  # a blank page of that size compresses to a few kB
