"""`nianbao ingest` as a user runs it: the real CLI, a real Prefect flow, a real database."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .helpers import ROOT, SAMPLES

NIANBAO = str(Path(sys.executable).with_name("nianbao"))
SAMPLE_DOCUMENTS = 6
SAMPLE_FACTS = 200 + 198 + 4 * 186
TABLES = ("documents", "reports", "sections", "facts", "checks", "findings")


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One Prefect home for the module: its first temporary server is the slowest to start.
    return str(tmp_path_factory.mktemp("prefect-home"))


@pytest.fixture
def session_server(prefect_home: str, prefect_api: str) -> dict[str, str]:
    """The environment of a run on the session's Prefect server. A run with no server starts
    a temporary one, ~20 s of a 2-core machine: only the test of a user's first runs
    (test_ingest_samples_then_rerun_changes_nothing) pays for that."""
    return {"PREFECT_HOME": prefect_home, "PREFECT_API_URL": prefect_api}


def ingest(
    args: list[str], prefect_env: dict[str, str], timeout: float = 300, **popen
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **prefect_env}
    return subprocess.run(
        [NIANBAO, "ingest", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        **popen,
    )


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        result = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}
    engine.dispose()
    return result


def test_ingest_samples_then_rerun_changes_nothing(tmp_path: Path, prefect_home: str) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    raw = tmp_path / "raw"
    temporary_server = {"PREFECT_HOME": prefect_home}
    first = ingest(["samples/", "--db", url, "--raw-dir", str(raw)], temporary_server)
    assert first.returncode == 0, first.stderr
    assert f"documents seen: {SAMPLE_DOCUMENTS}" in first.stdout
    assert f"{SAMPLE_DOCUMENTS} loaded, 0 unchanged" in first.stdout
    assert "rules failed in loaded reports: R2 1, R3 11" in first.stdout
    loaded = counts(url)
    assert loaded["documents"] == loaded["reports"] == SAMPLE_DOCUMENTS
    assert loaded["facts"] == SAMPLE_FACTS

    second = ingest(["samples/", "--db", url, "--raw-dir", str(raw)], temporary_server)
    assert second.returncode == 0, second.stderr
    assert f"0 loaded, {SAMPLE_DOCUMENTS} unchanged" in second.stdout
    assert counts(url) == loaded

    # Each run is a `runs` row with its Prefect flow run; the reports point to the first.
    with sqlite3.connect(tmp_path / "w.db") as conn:
        runs = conn.execute(
            "SELECT id, flow, flow_run_id, state, documents_seen, loaded, unchanged FROM runs"
        ).fetchall()
        linked = conn.execute("SELECT DISTINCT run_id FROM reports").fetchall()
    assert [row[1:2] + row[3:] for row in runs] == [
        ("nianbao-ingest", "completed", SAMPLE_DOCUMENTS, SAMPLE_DOCUMENTS, 0),
        ("nianbao-ingest", "completed", SAMPLE_DOCUMENTS, 0, SAMPLE_DOCUMENTS),
    ]
    assert all(len(row[2]) == 36 for row in runs) and linked == [(runs[0][0],)]
    # And each published the quality report of its own reports to the temporary server's
    # database: 6 documents, 3 current reports, 1 failing rules; then nothing new.
    with sqlite3.connect(Path(prefect_home) / "prefect.db") as conn:
        published = [
            data
            for (data,) in conn.execute(
                "SELECT data FROM artifact WHERE key = 'quality-report' ORDER BY created"
            )
        ]
    assert f"of run {runs[0][0]}" in published[-2] and "| 6 | 0 | 0 | 3 | 1 |" in published[-2]
    assert f"of run {runs[1][0]}" in published[-1] and "| 0 | 0 | 0 | 0 | 0 |" in published[-1]


def test_raw_bytes_are_kept_by_content(tmp_path: Path, session_server: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = ingest(
        ["samples/04_shanghai_szfbgt_2019.html", "--db", url, "--raw-dir", str(tmp_path / "raw")],
        session_server,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "w.db") as conn:
        sha256, raw_path = conn.execute("SELECT sha256, raw_path FROM documents").fetchone()
    # The warehouse holds the key under the store's root, never a path of this machine.
    assert raw_path == f"{sha256[:2]}/{sha256}.html"
    kept = (tmp_path / "raw" / raw_path).read_bytes()
    assert kept == (SAMPLES / "04_shanghai_szfbgt_2019.html").read_bytes()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_ingest_into_postgresql(
    db_url: str, tmp_path: Path, session_server: dict[str, str]
) -> None:
    result = ingest(
        ["samples/", "--db", db_url, "--raw-dir", str(tmp_path / "raw"), "--workers", "2"],
        session_server,
    )
    assert result.returncode == 0, result.stderr
    found = counts(db_url)
    assert found["documents"] == found["reports"] == SAMPLE_DOCUMENTS
    assert found["facts"] == SAMPLE_FACTS
    engine = create_engine(db_url)
    with engine.connect() as conn:
        total = conn.execute(
            text(
                "SELECT new_received FROM v_applications "
                "WHERE agency LIKE '淮安%' AND applicant = 'total'"
            )
        ).scalar_one()
    engine.dispose()
    assert total == 3119


def _pdf_variants(folder: Path, count: int) -> None:
    """Distinct documents with the real report's content: a comment after %%EOF changes the hash."""
    data = (SAMPLES / "01_huaian_shizhengfu_2024.pdf").read_bytes()
    folder.mkdir()
    for index in range(count):
        (folder / f"report-{index:03d}.pdf").write_bytes(data + f"\n%variant {index}\n".encode())


def _signal_a_thread_not_the_main_one(pid: int, signum: int) -> None:
    """Send `signum` to the oldest thread of process `pid` but its main one (tgkill: glibc 2.30
    and later). Not the newest: a signal sent to a thread is lost if that thread exits before
    it runs (one sent to the process never is), and the newest thread may be a short-lived one."""
    others = sorted(int(task.name) for task in Path(f"/proc/{pid}/task").iterdir())
    others.remove(pid)
    assert others, "the process has no thread but its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.tgkill(pid, others[0], signum) == 0, os.strerror(ctypes.get_errno())


@contextmanager
def _sigint_handled() -> Iterator[None]:
    """SIGINT handled in this process while inside, so that a child started there gets it at its
    default, as a terminal's foreground job does: a shell that starts a command in the
    background (a CI runner's script, `make … &`) starts it with SIGINT ignored, which an exec
    keeps, and a child that inherits that ignores the Ctrl-C a test sends it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _reports(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the schema is not created yet


def test_killed_ingest_resumes_without_duplicate_or_partial_reports(
    tmp_path: Path, session_server: dict[str, str]
) -> None:
    corpus = tmp_path / "corpus"
    _pdf_variants(corpus, 40)
    db = tmp_path / "w.db"
    url = f"sqlite:///{db}"
    args = [str(corpus), "--db", url, "--raw-dir", str(tmp_path / "raw")]
    process = subprocess.Popen(
        [NIANBAO, "ingest", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **session_server},
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while _reports(db) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # The whole process group: the flow and its parser workers, as an OOM killer or ^C would.
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    interrupted_at = _reports(db)
    assert 3 <= interrupted_at < 40, "the kill must land half way for this test to mean anything"

    rerun = ingest(args, session_server)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{interrupted_at} unchanged" in rerun.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 40
        assert conn.execute(
            "SELECT COUNT(DISTINCT document_sha256), COUNT(*) FROM reports"
        ).fetchone() == (40, 40)
        facts_per_report = conn.execute("SELECT COUNT(*) FROM facts GROUP BY report_id").fetchall()
    assert facts_per_report == [(200,)] * 40


def test_a_folder_gives_its_reports_and_conversions_not_its_readme(tmp_path: Path) -> None:
    from nianbao.flows.ingest import discover_files

    for name in ("report.pdf", "report.converted.md", "README.md", "LICENSE", "gold.canon.json"):
        (tmp_path / name).write_bytes(b"x")
    found = [Path(p).name for p in discover_files([tmp_path])]
    assert found == ["report.converted.md", "report.pdf"]


def _statuses(url: str) -> dict[str, tuple[str, str | None, int]]:
    """source → (status, problem code, facts of its report) of every document."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.source, d.status, d.problem_code, count(f.id) FROM documents d"
                " LEFT JOIN reports r ON r.document_sha256 = d.sha256"
                " LEFT JOIN facts f ON f.report_id = r.id"
                " GROUP BY d.source, d.status, d.problem_code"
            )
        ).all()
    engine.dispose()
    return {Path(source).name: (status, code, facts) for source, status, code, facts in rows}


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_document_whose_load_failed_is_loaded_by_the_next_run(
    db_url: str, tmp_path: Path, session_server: dict[str, str]
) -> None:
    """A failed load is the warehouse's (a refused row), not the file's: once the warehouse
    takes the rows, the next run over the files loads the document; a file that failed to
    parse is not parsed again."""
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("04_shanghai_szfbgt_2019.html", "huzhu-employment-2023.txt"):
        (reports / name).write_bytes((SAMPLES / name).read_bytes())
    (reports / "truncated.pdf").write_bytes(
        (ROOT / "tests/fixtures/bad/truncated.pdf").read_bytes()
    )
    args = [str(reports), "--db", db_url, "--raw-dir", str(tmp_path / "raw")]
    engine = create_engine(db_url)
    with engine.begin() as conn:
        # A rule of the warehouse's own that the 2019 report breaks, as a DBA might add one.
        conn.execute(text("ALTER TABLE reports ADD CONSTRAINT no_2019 CHECK (year <> 2019)"))

    first = ingest(args, session_server)
    assert first.returncode == 1, first.stderr
    assert "load_failed" in first.stdout
    assert _statuses(db_url) == {
        "04_shanghai_szfbgt_2019.html": ("failed", "load_failed", 0),
        "huzhu-employment-2023.txt": ("loaded", None, 186),
        "truncated.pdf": ("failed", "corrupt_pdf", 0),
    }

    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE reports DROP CONSTRAINT no_2019"))
    engine.dispose()
    second = ingest(args, session_server)
    assert second.returncode == 1, second.stderr  # the truncated PDF still failed
    assert "1 loaded, 2 unchanged" in second.stdout, second.stdout
    assert _statuses(db_url) == {
        "04_shanghai_szfbgt_2019.html": ("loaded", None, 198),
        "huzhu-employment-2023.txt": ("loaded", None, 186),
        "truncated.pdf": ("failed", "corrupt_pdf", 0),
    }


@pytest.mark.parametrize("copied", [0, 3])
def test_a_run_planned_in_slices_while_it_parses_counts_every_file_once(
    db_url: str,
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    copied: int,
) -> None:
    # The next slice of files is planned while the last one parses: slices of 2, 4 and 1 files
    # here. A copy of a report, as the last file, is one document, parsed and loaded once: a
    # copy of the first slice's (loaded before the last slice is planned) and of the second's
    # (planned while the second parses, before its documents are in the warehouse).
    from nianbao.flows import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "FIRST_PLAN_SLICE", 2)
    monkeypatch.setattr(ingest_module, "PLAN_SLICE", 4)
    reports = sorted(p for p in SAMPLES.iterdir() if p.suffix in {".pdf", ".html", ".docx", ".txt"})
    copy = tmp_path / "copy" / reports[copied].name
    copy.parent.mkdir()
    copy.write_bytes(reports[copied].read_bytes())
    files = [*map(str, reports), str(copy)]
    assert len(reports) == SAMPLE_DOCUMENTS
    assert list(ingest_module.plan_slices(len(files))) == [(0, 2), (2, 6), (6, 7)]

    # The flow run's log lines, which Prefect's loggers do not pass on to the root logger.
    planned: list[str] = []
    lines = logging.Handler(logging.INFO)
    lines.emit = lambda record: planned.append(record.getMessage())  # type: ignore[method-assign]
    lines.addFilter(lambda record: " files: " in record.getMessage())
    flow_logger = logging.getLogger("prefect.flow_runs")
    flow_logger.addHandler(lines)
    try:
        summary = ingest_module.ingest_flow(files, db_url, raw_dir=str(tmp_path / "raw"), workers=2)
    finally:
        flow_logger.removeHandler(lines)

    assert planned == [
        "2 files: 2 to parse, 0 unchanged",
        "4 files: 4 to parse, 0 unchanged",
        "1 files: 0 to parse, 1 unchanged",
    ]
    assert summary.seen == SAMPLE_DOCUMENTS + 1
    assert (summary.outcomes["loaded"], summary.outcomes["unchanged"]) == (SAMPLE_DOCUMENTS, 1)
    found = counts(db_url)
    assert found["documents"] == found["reports"] == SAMPLE_DOCUMENTS
    assert found["facts"] == SAMPLE_FACTS


def test_ctrl_c_while_a_slice_waits_for_the_warehouse_stops_the_run_at_once(
    tmp_path: Path, session_server: dict[str, str]
) -> None:
    # The warehouse is locked while the run plans its first slice: the plan waits it out for
    # up to NIANBAO_DB_RETRY_SECONDS. A Ctrl-C then stops the run without waiting for it.
    # Regression: the kernel may give the SIGINT to any thread of the process, and a main
    # thread blocked on the plan with no timeout never ran Python again to act on it (the run
    # hung until the plan gave up). The signal goes to a thread other than the main one.
    corpus = tmp_path / "corpus"
    _pdf_variants(corpus, 250)
    db = tmp_path / "w.db"
    args = [str(corpus), "--db", f"sqlite:///{db}", "--raw-dir", str(tmp_path / "raw")]
    env = {
        **os.environ,
        **session_server,
        "NIANBAO_DB_RETRY_SECONDS": "120",
        "NIANBAO_DB_LOCK_TIMEOUT": "1",
    }
    # Not inherited ignored: in CI runs started in the background the run ignored the Ctrl-C,
    # and the test failed whatever the run did with it.
    with _sigint_handled():
        process = subprocess.Popen(
            [NIANBAO, "ingest", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 120
    while not any((tmp_path / "raw").rglob("*.pdf")) and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.002)
    lines: list[str] = []
    waiting, stacks = threading.Event(), threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if "retrying in" in line:
                waiting.set()
            if "most recent call first" in line:
                stacks.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with sqlite3.connect(db, timeout=30, isolation_level=None) as lock:
        lock.execute("BEGIN EXCLUSIVE")
        # Not a fixed time: the plan stores every file before its query meets the lock, which
        # takes longer than a few seconds on a busy machine.
        assert waiting.wait(120), "".join(lines)
        # Where the waiting run is, as an operator would ask a stuck one; it goes on.
        process.send_signal(signal.SIGUSR1)
        assert stacks.wait(30), "".join(lines)
        _signal_a_thread_not_the_main_one(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # its stacks, for the failure's message below
            process.send_signal(signal.SIGUSR1)
            time.sleep(2)
        finally:
            stopped_after = time.monotonic() - interrupted
            if process.poll() is None:  # a run that did not stop must not outlive the test
                process.kill()
                process.wait()
            lock.execute("ROLLBACK")
    reader.join(10)
    output = "".join(lines)
    assert process.returncode != 0, output
    assert stopped_after < 20, f"{stopped_after:.0f} s from Ctrl-C to the end:\n{output}"
    # The stacks showed the plan's thread in the ingest, waiting on the warehouse.
    assert "flows/ingest.py" in output.split("most recent call first", 1)[1]
    assert _reports(db) == 0
