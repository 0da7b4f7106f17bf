"""Loading a batch of documents in one transaction (`schema.load.load_documents`) and its
fallback to one transaction a document (`schema.batchload.load_results`): real parses of the
samples, a real PostgreSQL for the concurrency and the refused document."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from nianbao.harvest.rawstore import RawStore
from nianbao.parsers.agency import resolve_agency
from nianbao.parsers.pool import DocumentLimits, WorkItem, parse_batch, parse_then
from nianbao.parsers.report import parse_bytes
from nianbao.parsers.result import ParseResult
from nianbao.schema.batchload import Loaded, LoadTarget, load_results
from nianbao.schema.db import engine_for, upgrade
from nianbao.schema.load import LoadOutcome, cell_state, load_document, load_documents

from .conftest import new_database
from .helpers import REAL, SAMPLES, WAREHOUSE_CONTENT, rows, warehouse_content
from .test_warehouse import HUAIAN, parsed

SAMPLE_FILES = [
    "01_huaian_shizhengfu_2024.pdf",
    "04_shanghai_szfbgt_2019.html",
    "huzhu-employment-2023.docx",
    "huzhu-employment-2023.txt",
]


def parse_sample(name: str, edit: Callable[[bytes], bytes] = lambda data: data) -> ParseResult:
    return parse_bytes(edit((SAMPLES / name).read_bytes()), f"samples/{name}", None)


def with_nul(data: bytes) -> bytes:
    """The text report with a NUL byte in a paragraph, as a broken export leaves one."""
    cut = data.index(b"\n", 2000)
    return data[:cut] + b" \x00 " + data[cut:]


def refused_by_postgresql(result: ParseResult) -> ParseResult:
    """A parse result whose section text holds a NUL, which PostgreSQL cannot store: what a
    reader that lets one through, or a hand-edited `parse --json` object, hands the loader."""
    first, *rest = result.sections
    return replace(result, sections=(replace(first, text=first.text + "\x00"), *rest))


def test_a_nul_in_a_text_report_is_dropped_by_the_reader() -> None:
    clean = parse_sample("huzhu-employment-2023.txt")
    with_a_nul = parse_sample("huzhu-employment-2023.txt", with_nul)
    assert not any("\x00" in section.text for section in with_a_nul.sections)
    assert [(f.table, f.row, f.col, f.value) for f in with_a_nul.facts] == [
        (f.table, f.row, f.col, f.value) for f in clean.facts
    ]


@pytest.fixture
def pg_warehouse(pg_url: str) -> str:
    """A new PostgreSQL warehouse at the current schema."""
    url = new_database(pg_url)
    upgrade(url)
    return url


def statuses(url: str) -> dict[str, tuple[str, str | None]]:
    return {
        source: (status, code)
        for source, status, code in rows(url, "SELECT source, status, problem_code FROM documents")
    }


def test_a_batch_loads_what_one_document_at_a_time_loads(db_url: str, tmp_path) -> None:
    results = [parse_sample(name) for name in SAMPLE_FILES]
    one_by_one = f"sqlite:///{tmp_path / 'one-by-one.db'}"
    upgrade(one_by_one)
    single = engine_for(one_by_one)
    batch = engine_for(db_url)
    try:
        for result in results:
            assert load_document(single, result, f"raw/{result.sha256}") == LoadOutcome.LOADED
        # The same document twice in a batch loads once.
        documents = [(result, f"raw/{result.sha256}") for result in [*results, results[0]]]
        assert load_documents(batch, documents) == [LoadOutcome.LOADED] * 4 + [
            LoadOutcome.UNCHANGED
        ]
        assert load_documents(batch, documents[:2]) == [LoadOutcome.UNCHANGED] * 2
        newer = [replace(result, parser_version="next") for result in results[:2]]
        assert (
            load_documents(batch, [(newer[0], None), (newer[1], None)])
            == [LoadOutcome.RELOADED] * 2
        )
    finally:
        single.dispose()
        batch.dispose()

    content = (
        "SELECT d.source, d.raw_path, d.status, r.agency, r.year, r.template, r.is_current,"
        " (SELECT COUNT(*) FROM facts f WHERE f.report_id = r.id),"
        " (SELECT COUNT(*) FROM sections s WHERE s.report_id = r.id),"
        " (SELECT COUNT(*) FROM checks c WHERE c.report_id = r.id)"
        " FROM documents d JOIN reports r ON r.document_sha256 = d.sha256 ORDER BY d.source"
    )
    expected, got = rows(one_by_one, content), rows(db_url, content)
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    assert [row[7] for row in got] == [200, 198, 186, 186]  # the samples' cells
    # The DOCX and the text rendering are one agency and year: the one first seen last is
    # current, on both.
    assert sum(row[6] for row in got) == 3


@pytest.mark.postgres
def test_a_document_the_warehouse_refuses_fails_alone_and_its_batch_loads(
    pg_warehouse: str,
) -> None:
    url = pg_warehouse
    good = [parse_sample(name) for name in SAMPLE_FILES[:3]]
    bad = refused_by_postgresql(parse_sample("huzhu-employment-2023.txt"))
    batch = [good[0], bad, *good[1:]]
    target = LoadTarget(url, None, retry_seconds=5)

    loaded = load_results(batch, {r.sha256: f"raw/{r.sha256}" for r in batch}, target)

    assert [(d.outcome, d.problem_code) for d in loaded] == [
        ("loaded", None),
        ("failed", "load_failed"),
        ("loaded", None),
        ("loaded", None),
    ]
    assert "NUL" in loaded[1].problem_message
    assert statuses(url) == {
        "samples/01_huaian_shizhengfu_2024.pdf": ("loaded", None),
        "samples/huzhu-employment-2023.txt": ("failed", "load_failed"),
        "samples/04_shanghai_szfbgt_2019.html": ("loaded", None),
        "samples/huzhu-employment-2023.docx": ("loaded", None),
    }
    assert rows(url, "SELECT COUNT(*) FROM facts")[0][0] == 200 + 186 + 198
    assert rows(url, "SELECT raw_path FROM documents WHERE status = 'failed'")[0][0] == (
        f"raw/{bad.sha256}"
    )
    # A rerun of the same batch tries the refused document again (a failed load is the
    # warehouse's, not the file's); refused again, it stays failed and the rest is unchanged.
    again = load_results(batch, {}, target)
    assert [(d.outcome, d.problem_code) for d in again] == [
        ("unchanged", None),
        ("failed", "load_failed"),
        ("unchanged", None),
        ("unchanged", None),
    ]
    # Results a worker loaded already pass through in their place.
    mixed = load_results([again[0], good[2]], {}, target)
    assert mixed[0] is again[0] and isinstance(mixed[1], Loaded)


@pytest.mark.postgres
def test_a_document_whose_failure_cannot_be_stored_does_not_stop_its_batch(
    pg_warehouse: str,
) -> None:
    url = pg_warehouse
    good = [parse_sample(name) for name in SAMPLE_FILES[:2]]
    bad = refused_by_postgresql(parse_sample("huzhu-employment-2023.txt"))
    bad = replace(bad, source=bad.source + "\x00")
    target = LoadTarget(url, None, retry_seconds=5)

    loaded = load_results([bad, *good], {}, target)

    assert [(d.outcome, d.problem_code) for d in loaded] == [
        ("failed", "load_failed"),
        ("loaded", None),
        ("loaded", None),
    ]
    assert sorted(statuses(url)) == [
        "samples/01_huaian_shizhengfu_2024.pdf",
        "samples/04_shanghai_szfbgt_2019.html",
    ]


def load_in_threads(
    engine: Engine, batches: list[list[dict[str, Any]]], first_commits_after: float = 0.0
) -> list[Any]:
    """Each batch in a thread of its own (its own connection), all started together; the first
    batch waits `first_commits_after` seconds before it commits, so the others run their
    whole load while it holds its rows uncommitted."""
    warm = [engine.connect() for _ in batches]  # connect first, so the loads overlap
    for conn in warm:
        conn.close()
    barrier = threading.Barrier(len(batches))
    outcomes: list[Any] = [None] * len(batches)

    def work(i: int) -> None:
        documents = [(ParseResult.from_json(doc), None) for doc in batches[i]]
        barrier.wait()
        try:
            outcomes[i] = load_documents(engine, documents)
        except Exception as exc:  # a deadlock or a broken rule, surfaced by the assertion
            outcomes[i] = exc

    def hold(_connection: Connection) -> None:
        if threading.current_thread() is threads[0]:
            time.sleep(first_commits_after)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    event.listen(engine, "commit", hold)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        event.remove(engine, "commit", hold)
    return outcomes


@pytest.mark.postgres
def test_two_workers_loading_batches_of_one_agency_and_year_keep_one_current(
    pg_warehouse: str,
) -> None:
    url = pg_warehouse
    engine = engine_for(url)
    years = range(2030, 2034)
    try:
        # The batches hold the same agency and years in opposite orders: a lock taken out of
        # order would deadlock, a missing one let both settle a current report unseen by the
        # other (the first one holds its commit back to make that race sure).
        for round_ in range(3):
            first = [parsed(HUAIAN, year=y, copy=f"-{round_}-a-{y}") for y in years]
            second = [parsed(HUAIAN, year=y, copy=f"-{round_}-b-{y}") for y in reversed(years)]
            outcomes = load_in_threads(engine, [first, second], first_commits_after=0.5)
            assert outcomes == [[LoadOutcome.LOADED] * len(years)] * 2
            current = rows(url, "SELECT year, COUNT(*) FROM reports WHERE is_current GROUP BY year")
            assert sorted(tuple(row) for row in current) == [(y, 1) for y in years]
        # Two documents in both batches, in opposite orders: each loads once.
        shared = [parsed(HUAIAN, year=2030, copy=f"-shared-{i}") for i in range(2)]
        outcomes = load_in_threads(engine, [shared, shared[::-1]])
        assert (
            sorted([*outcomes[0], *outcomes[1]])
            == [LoadOutcome.LOADED] * 2 + [LoadOutcome.UNCHANGED] * 2
        )
        assert rows(url, "SELECT COUNT(*) FROM reports")[0][0] == 3 * 2 * len(years) + 2
        # The current one of each year is the one whose document was first seen last (by
        # sha256 among those seen at one time).
        reports = rows(
            url,
            "SELECT r.year, d.first_seen_at, d.sha256, r.is_current FROM reports r"
            " JOIN documents d ON d.sha256 = r.document_sha256",
        )
        for year in years:
            newest = max((seen, sha, current) for y, seen, sha, current in reports if y == year)
            assert newest[2], year
    finally:
        engine.dispose()


def test_documents_first_seen_by_one_run_settle_the_same_current_report_in_any_order(
    tmp_path,
) -> None:
    # A run's documents are first seen at its start: however its workers' loads interleave
    # (a lost Dask worker's documents load last), the same copy ends up current.
    seen_at = datetime(2026, 1, 1, tzinfo=UTC)
    copies = [ParseResult.from_json(parsed(HUAIAN, copy=f"-copy-{i}")) for i in range(3)]
    current = []
    for order in (copies, copies[::-1]):
        url = f"sqlite:///{tmp_path / f'{len(current)}.db'}"
        upgrade(url)
        engine = engine_for(url)
        try:
            for document in order:  # one batch each, as separate workers would
                load_documents(engine, [(document, None)], seen_at=seen_at)
        finally:
            engine.dispose()
        current += rows(url, "SELECT document_sha256 FROM reports WHERE is_current")
    assert len(current) == 2 and current[0] == current[1] == (max(c.sha256 for c in copies),)


@pytest.mark.postgres
def test_a_worker_loads_its_batch_a_part_at_a_time_while_the_next_part_parses(
    pg_url: str, tmp_path
) -> None:
    store = RawStore(tmp_path / "raw")
    names = [*SAMPLE_FILES, "huzhu-employment-2023.html", "huzhu-employment-2023.pdf"]
    items = [WorkItem(*store.put_file(SAMPLES / name), f"samples/{name}") for name in names]
    in_parts, at_once = new_database(pg_url), new_database(pg_url)
    upgrade(in_parts)
    upgrade(at_once)
    target = LoadTarget(in_parts, None, retry_seconds=5)
    handed: list[tuple[str, list[str]]] = []

    def load(batch: list[WorkItem], results: list[ParseResult]) -> list[Loaded]:
        handed.append((threading.current_thread().name, [item.source for item in batch]))
        return target(batch, results)

    returned = parse_then(items, DocumentLimits(), store, load, part=4, smallest_part=2)

    # Parts of four then two: the first loaded off the parsing thread; the last, smallest,
    # comes back parsed but not loaded, for the caller (the worker does not wait for its
    # load), in the batch's order.
    assert [sources for _, sources in handed] == [[item.source for item in items[:4]]]
    assert {thread for thread, _ in handed} != {threading.current_thread().name}
    assert [(d.source, d.outcome) for d in returned[:4]] == [
        (i.source, "loaded") for i in items[:4]
    ]
    assert [type(r) for r in returned[4:]] == [ParseResult, ParseResult]
    assert rows(in_parts, "SELECT count(*) FROM documents") == [(4,)]
    # What the caller loads of it: the rest, the loaded ones passing through.
    loaded = load_results(returned, {item.sha256: item.raw_key for item in items}, target)
    assert [(d.source, d.outcome) for d in loaded] == [(i.source, "loaded") for i in items]
    # The same rows as the batch parsed, then loaded in one transaction.
    LoadTarget(at_once, None, retry_seconds=5)(items, parse_batch(items, DocumentLimits(), store))
    expected, got = warehouse_content(at_once), warehouse_content(in_parts)
    assert len(got["facts"]) == 200 + 198 + 186 * 4
    for name in WAREHOUSE_CONTENT:
        assert got[name] == expected[name], name


@pytest.mark.postgres
def test_a_part_the_loader_cannot_load_stops_the_batch(pg_url: str, tmp_path) -> None:
    store = RawStore(tmp_path / "raw")
    items = [WorkItem(*store.put_file(SAMPLES / name), f"samples/{name}") for name in SAMPLE_FILES]
    # A database that does not exist: every part's load fails, and the error is the batch's.
    target = LoadTarget(pg_url.rsplit("/", 1)[0] + "/absent", None, retry_seconds=0)
    with pytest.raises(Exception, match="absent"):
        parse_then(items, DocumentLimits(), store, target, part=2, smallest_part=2)


def rows_of(result: ParseResult, raw_key: str) -> dict[str, list[tuple]]:
    """The rows docs/warehouse.md maps a parsed document onto, as WAREHOUSE_CONTENT reads
    them (a figure as the text of its exact value, so that a changed scale shows)."""
    sha = result.sha256
    agency = resolve_agency(result.agency, result.year, result.region) if result.agency else None
    problem = result.problem  # the first, on the document's row; all of them are findings
    return {
        "documents": [
            (sha, result.source, result.format, result.bytes, result.pages, "loaded")
            + (problem and problem.code, problem and problem.message)
            + (result.parser_version, raw_key)
        ],
        "reports": [
            (sha, result.agency, result.region, result.year, agency and agency.key)
            + (result.agency_source, agency and agency.region_code, agency and agency.level)
            + (result.template, result.parser_version)
        ],
        "sections": [(sha, i, s.code, s.heading, s.text) for i, s in enumerate(result.sections)],
        "facts": [
            (sha, f.table, f.row, f.col, None if f.value is None else str(f.value), f.raw)
            + (f.label, f.unit, cell_state(f.value, f.raw), f.source, f.evidence, f.section)
            for f in result.facts
        ],
        "checks": [(sha, c.rule, c.scope, c.ok, c.detail) for c in result.checks],
        "findings": [(sha, p.code, p.message) for p in result.problems],
    }


@pytest.mark.postgres
def test_parts_of_real_reports_load_exactly_the_rows_their_parse_results_map_onto(
    pg_warehouse: str,
) -> None:
    # The samples and the real reports (a dozen agencies) in parts of 8, as workers load them
    # (COPY, agencies shared between parts): every table holds the mapping's rows, no more.
    paths = [p for p in sorted(SAMPLES.iterdir()) if p.suffix in {".pdf", ".docx", ".html", ".txt"}]
    results = [parse_bytes(path.read_bytes(), path.name) for path in paths]
    results += [parse_bytes(path.read_bytes(), path.name) for path in sorted(REAL.glob("*.txt"))]
    assert len(results) == 29 and {r.status for r in results} == {"parsed"}
    raw_keys = {result.sha256: f"raw/{result.sha256}" for result in results}
    target = LoadTarget(pg_warehouse, None, retry_seconds=5)
    for start in range(0, len(results), 8):
        loaded = load_results(results[start : start + 8], raw_keys, target)
        assert {d.outcome for d in loaded} == {"loaded"}

    got = warehouse_content(pg_warehouse)
    got["facts"] = [(*f[:4], None if f[4] is None else str(f[4]), *f[5:]) for f in got["facts"]]
    for table in ("documents", "reports", "sections", "facts", "checks", "findings"):
        expected = [row for r in results for row in rows_of(r, raw_keys[r.sha256])[table]]
        assert sorted(got[table], key=repr) == sorted(expected, key=repr), table
    assert len(got["facts"]) == sum(len(r.facts) for r in results) > 2000
    # One current report for each agency and year (the four renderings of huzhu's report are
    # one), with every alias the reports printed.
    current = rows(
        pg_warehouse,
        "SELECT COALESCE(a.key, r.agency), r.year, SUM(CASE WHEN r.is_current THEN 1 ELSE 0 END),"
        " COUNT(*) FROM reports r LEFT JOIN agencies a ON a.id = r.agency_id"
        " WHERE r.agency IS NOT NULL AND r.year IS NOT NULL GROUP BY 1, 2",
    )
    assert {row[2] for row in current} == {1} and max(row[3] for row in current) == 4
    aliases = rows(
        pg_warehouse,
        "SELECT a.key, n.name FROM agency_aliases n JOIN agencies a ON a.id = n.agency_id",
    )
    agencies = {r.agency: resolve_agency(r.agency, r.year, r.region) for r in results if r.agency}
    assert sorted(map(tuple, aliases)) == sorted(
        {(agency.key, printed) for printed, agency in agencies.items() if agency}
    )
