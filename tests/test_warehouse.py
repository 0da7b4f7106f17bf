"""The warehouse on both backends: migrations, idempotent loads, is_current, R5 and the views.

Parse objects are built from gold canon files of real reports (samples/*.canon.json).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from nianbao.parsers.report import empty_result
from nianbao.schema.checks import APPLICANT_COLUMNS
from nianbao.schema.crossyear import evaluate_r5
from nianbao.schema.db import current_revision, downgrade, engine_for, upgrade
from nianbao.schema.load import LoadOutcome, known_documents, load_document
from nianbao.schema.models import (
    Agency,
    AgencyAlias,
    Base,
    Check,
    Document,
    Fact,
    Finding,
    Report,
    Section,
)

from .helpers import gold

HUAIAN = "01_huaian_shizhengfu_2024"
SHANGHAI = "04_shanghai_szfbgt_2019"
HUZHU = "huzhu-employment-2023"
APPLICANTS = [*APPLICANT_COLUMNS, "total"]


# The newest migration: `upgrade` brings every warehouse here.
HEAD_REVISION = "0008"


def canon(name: str) -> dict[str, Any]:
    return gold(f"{name}.canon.json")


def fact(key: str, printed: int | float | str) -> dict[str, Any]:
    """A parse --json fact from a canon entry: "" is a printed blank, "251000元" keeps its unit."""
    table, row, col = key.split("/")
    value: int | float | None = None if printed == "" else printed
    unit = None
    if isinstance(printed, str) and printed:
        number, unit = re.fullmatch(r"([\d.]+)(\D+)", printed).groups()
        value = float(number) if "." in number else int(number)
    return {
        "table": table,
        "row": row,
        "col": col,
        "value": value,
        "raw": str(printed),
        "label": row,
        "unit": unit,
    }


def parsed(
    name: str,
    *,
    agency: str = "淮安市人民政府",
    year: int | None = None,
    parser_version: str = "1.0",
    copy: str = "",
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The parse --json object of a canon report; `copy` makes a distinct document of it."""
    gold = canon(name)
    facts = {key: fact(key, printed) for key, printed in gold["facts"].items()}
    if edit:
        edit(facts)
    return {
        "source": f"{name}{copy}.pdf",
        "sha256": hashlib.sha256(f"{name}{copy}".encode()).hexdigest(),
        "format": "pdf",
        "bytes": 123_456,
        "pages": 9,
        "status": "parsed",
        "agency": agency,
        "region": "江苏省淮安市",
        "year": year or gold["year"],
        "template": gold["template"],
        "parser_version": parser_version,
        "sections": [
            {"code": "preamble", "heading": "", "text": f"{agency}{gold['year']}年度报告"},
            {"code": "overview", "heading": "一、总体情况", "text": "……"},
        ],
        "facts": list(facts.values()),
        "checks": [{"rule": "R1", "scope": col, "ok": True, "detail": "…"} for col in APPLICANTS],
        "problems": [],
    }


def failed(sha_seed: str = "broken") -> dict[str, Any]:
    """A failed parse of a distinct (fake) file, shaped by the parser's own constructor."""
    result = empty_result("broken.pdf", sha_seed.encode(), "pdf").to_json()
    result.update(
        sha256=hashlib.sha256(sha_seed.encode()).hexdigest(),
        parser_version="1.0",
        problems=[{"code": "encrypted_pdf", "message": "the PDF asks for a password"}],
    )
    return result


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = engine_for(db_url)
    yield engine
    engine.dispose()


def count(engine: Engine, model: type[Base]) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def counts(engine: Engine) -> dict[str, int]:
    return {m.__tablename__: count(engine, m) for m in (Document, Report, Section, Fact, Check)}


def cell(engine: Engine, table: str, row: str, col: str) -> Fact:
    with engine.connect() as conn:
        return conn.execute(
            select(Fact).where(Fact.table_code == table, Fact.row_code == row, Fact.col_code == col)
        ).one()


def reports(engine: Engine) -> list[Report]:
    with engine.connect() as conn:
        return list(conn.execute(select(Report).order_by(Report.id)))


def test_upgrade_creates_tables_and_views(db_url: str, engine: Engine) -> None:
    names = inspect(engine)
    assert {
        "documents",
        "reports",
        "sections",
        "facts",
        "checks",
        "findings",
        "harvest_log",
        "harvest_entries",
    } <= set(names.get_table_names())
    assert {"v_applications", "v_check_failures", "v_key_series"} <= set(names.get_view_names())
    assert current_revision(db_url) == HEAD_REVISION
    upgrade(db_url)  # a second upgrade is a no-op
    assert current_revision(db_url) == HEAD_REVISION


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_load_stores_every_fact(engine: Engine) -> None:
    doc = parsed(HUAIAN)
    assert load_document(engine, doc) == LoadOutcome.LOADED
    assert counts(engine) == {
        "documents": 1,
        "reports": 1,
        "sections": 2,
        "facts": len(canon(HUAIAN)["facts"]),
        "checks": 7,
    }
    assert cell(engine, "applications", "new_received", "total").value == 3119
    fees = cell(engine, "active_disclosure", "fees", "amount_10k_yuan")
    assert fees.value == Decimal("96171.6")
    assert str(fees.value) == "96171.6"


def test_blank_cell_is_null_and_keeps_raw(engine: Engine) -> None:
    load_document(engine, parsed(SHANGHAI, agency="上海市人民政府办公厅"))
    blank = cell(engine, "applications", "new_received", "research")
    assert (blank.value, blank.raw) == (None, "")
    amount = cell(engine, "active_disclosure", "procurement", "amount")
    assert (amount.value, amount.unit, amount.raw) == (251000, "元", "251000元")


def test_document_row_records_the_file(engine: Engine) -> None:
    doc = parsed(HUZHU, agency="互助县就业服务局")
    load_document(engine, doc, raw_path="data/raw/ab/abcd.pdf")
    with engine.connect() as conn:
        row = conn.execute(select(Document)).one()
    assert (row.sha256, row.status, row.format, row.pages, row.raw_path) == (
        doc["sha256"],
        "loaded",
        "pdf",
        9,
        "data/raw/ab/abcd.pdf",
    )


def test_loading_again_changes_nothing(engine: Engine) -> None:
    doc = parsed(HUAIAN)
    load_document(engine, doc)
    before = counts(engine)
    assert load_document(engine, doc) == LoadOutcome.UNCHANGED
    assert counts(engine) == before


def test_new_parser_version_replaces_rows(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    assert load_document(engine, parsed(HUAIAN, parser_version="2.0")) == LoadOutcome.RELOADED
    assert count(engine, Fact) == len(canon(HUAIAN)["facts"])
    (report,) = reports(engine)
    assert (report.parser_version, report.is_current) == ("2.0", True)


def test_second_report_for_agency_year_supersedes_first(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    load_document(engine, parsed(HUAIAN, copy="-republished"))
    first, second = reports(engine)
    assert (first.is_current, second.is_current) == (False, True)
    assert count(engine, Fact) == 2 * len(canon(HUAIAN)["facts"])


def test_reparsing_superseded_report_keeps_it_superseded(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    load_document(engine, parsed(HUAIAN, copy="-republished"))
    load_document(engine, parsed(HUAIAN, parser_version="2.0"))
    current = {r.document_sha256: r.is_current for r in reports(engine)}
    assert current == {
        parsed(HUAIAN)["sha256"]: False,
        parsed(HUAIAN, copy="-republished")["sha256"]: True,
    }


def test_a_current_report_reparsed_as_another_agencys_hands_current_back(engine: Engine) -> None:
    # The republished report is current until a new parser reads another agency in it: the
    # first report is then its agency's newest again (a load that drops a current report
    # ranks all of that agency's reports, not only the current one and its own).
    load_document(engine, parsed(HUAIAN))
    load_document(engine, parsed(HUAIAN, copy="-republished"))
    moved = parsed(HUAIAN, copy="-republished", parser_version="2.0", agency="淮安市教育局")
    assert load_document(engine, moved) == LoadOutcome.RELOADED
    current = {r.agency: r.is_current for r in reports(engine)}
    assert current == {"淮安市人民政府": True, "淮安市教育局": True}
    load_document(engine, parsed(HUAIAN, copy="-third"))
    current = {(r.agency, r.document_sha256): r.is_current for r in reports(engine)}
    assert sorted(current.values()) == [False, True, True]
    assert current["淮安市人民政府", parsed(HUAIAN, copy="-third")["sha256"]]


def test_report_without_agency_is_current_alone(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN, agency=None))
    load_document(engine, parsed(HUAIAN, agency=None, copy="-2"))
    assert [r.is_current for r in reports(engine)] == [True, True]


def test_failed_document_is_recorded_without_report(engine: Engine) -> None:
    assert load_document(engine, failed()) == LoadOutcome.FAILED
    with engine.connect() as conn:
        row = conn.execute(select(Document)).one()
    assert (row.status, row.problem_code, row.problem_message) == (
        "failed",
        "encrypted_pdf",
        "the PDF asks for a password",
    )
    assert count(engine, Report) == 0
    assert load_document(engine, failed()) == LoadOutcome.UNCHANGED


def test_not_a_report_has_no_report(engine: Engine) -> None:
    doc = failed("menu page") | {"status": "not_a_report", "problems": []}
    assert load_document(engine, doc) == LoadOutcome.NOT_A_REPORT
    assert (count(engine, Document), count(engine, Report)) == (1, 0)


def test_failed_parse_of_new_parser_version_drops_old_report(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    worse = failed() | {"sha256": parsed(HUAIAN)["sha256"], "parser_version": "2.0"}
    assert load_document(engine, worse) == LoadOutcome.FAILED
    assert counts(engine) == {
        "documents": 1,
        "reports": 0,
        "sections": 0,
        "facts": 0,
        "checks": 0,
    }


def test_load_failing_half_way_leaves_nothing(engine: Engine) -> None:
    doc = parsed(HUAIAN)
    broken = {**doc, "facts": [*doc["facts"][:100], {**doc["facts"][100], "table": None}]}
    with pytest.raises(IntegrityError):
        load_document(engine, broken)
    assert counts(engine) == dict.fromkeys(counts(engine), 0)
    assert load_document(engine, doc) == LoadOutcome.LOADED  # the next run finishes the job


def previous_year(carried_forward: dict[str, int]) -> Callable[[dict[str, Any]], None]:
    """Edit a 2024 report into its 2023 predecessor with the given carried_forward row."""

    def edit(facts: dict[str, Any]) -> None:
        for col, value in carried_forward.items():
            facts[f"applications/carried_forward/{col}"].update(value=value, raw=str(value))

    return edit


# Huai'an 2024 carried over 34 (all natural persons); the 2023 report says it carried 30 forward.
HUAIAN_2023 = dict.fromkeys(APPLICANTS, 0) | {"natural_person": 34, "total": 30}


def r5_rows(engine: Engine) -> list[tuple[str, bool, str]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Check.scope, Check.ok, Check.detail)
                .where(Check.rule == "R5")
                .order_by(Check.id)
            )
        )


def test_r5_compares_with_previous_year(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN, year=2023, copy="-2023", edit=previous_year(HUAIAN_2023)))
    load_document(engine, parsed(HUAIAN))
    assert evaluate_r5(engine) == 7
    rows = r5_rows(engine)
    assert [scope for scope, _, _ in rows] == APPLICANTS
    assert [scope for scope, ok, _ in rows if not ok] == ["total"]
    assert rows[0][2] == "carried_over 2024 = 34; carried_forward 2023 = 34"
    assert rows[-1][2] == "carried_over 2024 = 34; carried_forward 2023 = 30"
    (report_id,) = {r.id for r in reports(engine) if r.year == 2024}
    with engine.connect() as conn:
        assert set(conn.scalars(select(Check.report_id).where(Check.rule == "R5"))) == {report_id}


def test_r5_skips_report_without_previous_year(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    assert evaluate_r5(engine) == 0
    assert r5_rows(engine) == []


def test_r5_rerun_replaces_its_rows(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN, year=2023, copy="-2023", edit=previous_year(HUAIAN_2023)))
    load_document(engine, parsed(HUAIAN))
    evaluate_r5(engine)
    assert evaluate_r5(engine) == 7
    assert len(r5_rows(engine)) == 7


def test_r5_for_new_previous_year_rechecks_next_year(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    load_document(engine, parsed(HUAIAN, year=2023, copy="-2023", edit=previous_year(HUAIAN_2023)))
    (id_2023,) = {r.id for r in reports(engine) if r.year == 2023}
    assert evaluate_r5(engine, report_ids=[id_2023]) == 7


def test_r5_uses_current_previous_report(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN, year=2023, copy="-2023", edit=previous_year(HUAIAN_2023)))
    corrected = HUAIAN_2023 | {"total": 34}
    load_document(engine, parsed(HUAIAN, year=2023, copy="-2023b", edit=previous_year(corrected)))
    load_document(engine, parsed(HUAIAN))
    evaluate_r5(engine)
    assert all(ok for _, ok, _ in r5_rows(engine))


def test_v_applications_has_a_row_per_applicant_column(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN, copy="-superseded"))
    load_document(engine, parsed(HUAIAN))
    load_document(engine, parsed(HUZHU, agency="互助县就业服务局"))
    with engine.connect() as conn:
        rows = (
            conn.execute(text("SELECT * FROM v_applications ORDER BY report_id")).mappings().all()
        )
    assert len(rows) == 14
    natural = next(
        r for r in rows if r["agency"] == "淮安市人民政府" and r["applicant"] == "natural_person"
    )
    gold = canon(HUAIAN)["facts"]
    assert natural["year"] == 2024
    assert natural["new_received"] == gold["applications/new_received/natural_person"] == 3001
    assert natural["granted"] == gold["applications/granted/natural_person"]
    assert natural["denied_state_secret"] == gold["applications/denied.state_secret/natural_person"]
    assert (
        natural["other_handling_fee_unpaid"]
        == gold["applications/other_handling.fee_unpaid/natural_person"]
    )
    assert natural["carried_forward"] == 103


def test_v_check_failures_lists_failed_rules(engine: Engine) -> None:
    doc = parsed(HUAIAN)
    doc["checks"].append(
        {"rule": "R3", "scope": "granted", "ok": False, "detail": "1288+21+50+3 = 1362 ≠ 1363"}
    )
    load_document(engine, doc)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM v_check_failures")).mappings().all()
    assert [
        (r["agency"], r["year"], r["rule"], r["scope"], r["detail"], r["source"]) for r in rows
    ] == [("淮安市人民政府", 2024, "R3", "granted", "1288+21+50+3 = 1362 ≠ 1363", doc["source"])]


def load_concurrently(engine: Engine, docs: list[dict[str, Any]]) -> list[LoadOutcome]:
    # Open the connections beforehand, so the loads overlap instead of queueing on connects.
    warm = [engine.connect() for _ in docs]
    for conn in warm:
        conn.close()
    barrier = threading.Barrier(len(docs))
    outcomes: list[Any] = [None] * len(docs)

    def work(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = load_document(engine, docs[i])
        except Exception as exc:  # surfaced by the assertion below
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(docs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_loads_of_different_documents(engine: Engine) -> None:
    docs = [parsed(HUAIAN), parsed(SHANGHAI, agency="上海市人民政府办公厅")]
    assert load_concurrently(engine, docs) == [LoadOutcome.LOADED] * 2
    assert count(engine, Report) == 2


def test_concurrent_loads_of_same_document(engine: Engine) -> None:
    outcomes = load_concurrently(engine, [parsed(HUAIAN), parsed(HUAIAN)])
    assert sorted(outcomes) == [LoadOutcome.LOADED, LoadOutcome.UNCHANGED]
    assert (count(engine, Document), count(engine, Fact)) == (1, len(canon(HUAIAN)["facts"]))


def test_concurrent_loads_of_same_agency_year_leave_one_current(engine: Engine) -> None:
    # The race is narrow: several rounds, one year each, make a missing lock show.
    for year in range(2030, 2036):
        docs = [parsed(HUAIAN, year=year, copy=f"-{year}-{i}") for i in range(4)]
        assert load_concurrently(engine, docs) == [LoadOutcome.LOADED] * 4
    current = [r.year for r in reports(engine) if r.is_current]
    assert sorted(current) == list(range(2030, 2036))


def test_known_documents_reports_parser_versions(engine: Engine) -> None:
    doc = parsed(HUAIAN)
    load_document(engine, doc)
    load_document(engine, failed())
    unknown = "0" * 64
    assert known_documents(engine, {doc["sha256"], failed()["sha256"], unknown}) == {
        doc["sha256"]: ("1.0", "loaded", None, None),
        failed()["sha256"]: ("1.0", "failed", "encrypted_pdf", "the PDF asks for a password"),
    }


def test_findings_of_a_loaded_report_are_stored(engine: Engine) -> None:
    document = parsed(HUAIAN)
    document["problems"] = [
        {
            "code": "row_cells_missing",
            "message": "applications/granted has 2 value cells for 7 columns",
        }
    ]
    assert load_document(engine, document) is LoadOutcome.LOADED
    with engine.connect() as conn:
        rows = conn.execute(select(Finding.code, Finding.message)).all()
    assert rows == [("row_cells_missing", "applications/granted has 2 value cells for 7 columns")]


# --- who published it: the agencies dimension -----------------------------------------------


def test_r5_links_one_agency_with_and_without_its_city(engine: Engine) -> None:
    # The 2023 title says 洪泽区人民政府, the 2024 one 淮安市洪泽区人民政府: one agency, one series.
    previous = parsed(
        HUAIAN,
        agency="洪泽区人民政府",
        year=2023,
        copy="-2023",
        edit=previous_year(HUAIAN_2023),
    )
    load_document(engine, previous)
    load_document(engine, parsed(HUAIAN, agency="淮安市洪泽区人民政府"))
    assert evaluate_r5(engine) == 7
    assert [scope for scope, ok, _ in r5_rows(engine) if not ok] == ["total"]
    with engine.connect() as conn:
        agencies = conn.execute(
            select(Agency.canonical_name, Agency.region_code, Agency.level, Agency.kind)
        ).all()
        aliases = set(conn.scalars(select(AgencyAlias.name)))
        linked = conn.execute(
            select(Report.year, Report.agency_id, Report.region_code, Report.level)
        ).all()
    assert agencies == [("淮安市洪泽区人民政府", "320813", "县", "government")]
    assert aliases == {"洪泽区人民政府", "淮安市洪泽区人民政府"}
    assert len({agency_id for _, agency_id, _, _ in linked}) == 1
    assert {(year, code, level) for year, _, code, level in linked} == {
        (2023, "320813", "县"),
        (2024, "320813", "县"),
    }


def test_second_spelling_of_one_agency_supersedes_the_first(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN, agency="洪泽区人民政府", copy="-first"))
    load_document(engine, parsed(HUAIAN, agency="淮安市洪泽区人民政府"))
    assert [r.is_current for r in reports(engine)] == [False, True]


def test_views_carry_agency_id_level_and_region(engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    doc = parsed(HUAIAN, copy="-failing")
    doc["checks"].append({"rule": "R3", "scope": "granted", "ok": False, "detail": "≠"})
    load_document(engine, doc)
    with engine.connect() as conn:
        applications = conn.execute(text("SELECT * FROM v_applications")).mappings().first()
        failures = conn.execute(text("SELECT * FROM v_check_failures")).mappings().first()
    for row in (applications, failures):
        assert row["agency_id"] is not None
        assert (row["agency_canonical"], row["level"], row["region_code"]) == (
            "淮安市人民政府",
            "市",
            "320800",
        )
        assert (row["province"], row["city"], row["county"]) == ("江苏省", "淮安市", None)


def test_migration_backfills_agencies_of_existing_reports(tmp_path: Path, db_url: str) -> None:
    # A warehouse at 0002 holding reports by two spellings of one agency and one fragment.
    if db_url.startswith("sqlite"):
        old_url = f"sqlite:///{tmp_path / 'at-0002.db'}"
    else:
        old_url = db_url.rsplit("/", 1)[0] + "/" + db_url.rsplit("/", 1)[1] + "_0002"
        with engine_for(db_url).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f'CREATE DATABASE "{old_url.rsplit("/", 1)[1]}"')
            )
    upgrade(old_url, "0002")
    old = engine_for(old_url)
    try:
        with old.begin() as conn:
            for n, (agency, year) in enumerate(
                [
                    ("洪泽区人民政府", 2023),
                    ("淮安市洪泽区人民政府", 2024),
                    ("定》)和《关于印发", 2024),
                ]
            ):
                sha = hashlib.sha256(str(n).encode()).hexdigest()
                conn.execute(
                    text(
                        "INSERT INTO documents (sha256, source, format, bytes, status, parser_version)"
                        " VALUES (:sha, 'x.pdf', 'pdf', 1, 'loaded', '0.1')"
                    ),
                    {"sha": sha},
                )
                conn.execute(
                    text(
                        "INSERT INTO reports (document_sha256, agency, region, year, parser_version,"
                        " is_current) VALUES (:sha, :agency, NULL, :year, '0.1', :current)"
                    ),
                    {"sha": sha, "agency": agency, "year": year, "current": True},
                )
        upgrade(old_url)
        assert current_revision(old_url) == HEAD_REVISION
        with old.connect() as conn:
            rows = conn.execute(
                select(Report.agency, Report.agency_id, Report.region_code, Report.level).order_by(
                    Report.id
                )
            ).all()
            assert conn.scalar(select(func.count()).select_from(Agency)) == 1
            assert conn.scalar(select(func.count()).select_from(AgencyAlias)) == 2
            assert conn.execute(text("SELECT agency_id FROM v_check_failures")).all() == []
        (_, first_id, code, level), (_, second_id, _, _), fragment = rows
        assert first_id == second_id and (code, level) == ("320813", "县")
        assert fragment[1:] == (None, None, None)
    finally:
        old.dispose()


def test_downgrade_from_agencies_keeps_reports(db_url: str, engine: Engine) -> None:
    load_document(engine, parsed(HUAIAN))
    engine.dispose()
    downgrade(db_url, "0002")
    assert current_revision(db_url) == "0002"
    with engine_for(db_url).connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM facts")) == len(canon(HUAIAN)["facts"])
        assert "agencies" not in inspect(conn).get_table_names()
    upgrade(db_url)  # and up again: the back-fill resolves the report once more
    with engine_for(db_url).connect() as conn:
        assert conn.scalar(select(Report.region_code)) == "320800"


def test_migration_turns_stored_raw_paths_into_keys(db_url: str, engine: Engine) -> None:
    # A warehouse at 0006 stored where the bytes were on the machine that ingested them.
    load_document(engine, parsed(HUAIAN))
    engine.dispose()
    downgrade(db_url, "0006")
    with engine_for(db_url).begin() as conn:
        sha = conn.scalar(text("SELECT sha256 FROM documents"))
        conn.execute(
            text("UPDATE documents SET raw_path = :path"),
            {"path": f"/srv/nianbao/raw/{sha[:2]}/{sha}.pdf"},
        )
        odd = hashlib.sha256(b"odd").hexdigest()
        conn.execute(
            text(
                "INSERT INTO documents (sha256, source, format, bytes, status, parser_version,"
                " raw_path) VALUES (:sha, 'x.pdf', 'pdf', 1, 'failed', '0.1', '/tmp/x.pdf')"
            ),
            {"sha": odd},
        )
    upgrade(db_url)
    with engine_for(db_url).connect() as conn:
        stored = dict(conn.execute(text("SELECT sha256, raw_path FROM documents")).all())
    # The key under the raw store's root; a path the raw store did not write is cleared.
    assert stored == {sha: f"{sha[:2]}/{sha}.pdf", odd: None}
