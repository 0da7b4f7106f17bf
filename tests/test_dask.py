"""`nianbao ingest --cluster`: a real Dask scheduler and two workers on 127.0.0.1, loading into a
real PostgreSQL, one worker killed half way; the warehouse must hold exactly the rows a run on the
local parser pool writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .conftest import PG_PASSWORD, _free_port, new_database
from .helpers import REAL, ROOT, SAMPLES

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BIN = Path(sys.executable).parent
COPIES = 3  # of each document, with bytes of their own: enough work to kill a worker mid-run

# The warehouse's rows, by content: ids, times and run ids differ between any two runs, and
# which of several reports of one agency and year is current depends on their load order.
CONTENT = {
    "documents": "SELECT sha256, source, format, bytes, pages, status, problem_code,"
    " problem_message, parser_version, raw_path FROM documents",
    "reports": "SELECT r.document_sha256, r.agency, r.region, r.year, a.key, r.agency_source,"
    " r.region_code, r.level, r.template, r.parser_version FROM reports r"
    " LEFT JOIN agencies a ON a.id = r.agency_id",
    "current": "SELECT agency, year, COUNT(*) FROM reports WHERE is_current GROUP BY agency, year",
    "sections": "SELECT r.document_sha256, s.position, s.code, s.heading, s.text"
    " FROM sections s JOIN reports r ON r.id = s.report_id",
    "facts": "SELECT r.document_sha256, f.table_code, f.row_code, f.col_code, f.value, f.raw,"
    " f.label, f.unit, f.state, f.source, f.evidence, f.section"
    " FROM facts f JOIN reports r ON r.id = f.report_id",
    "checks": "SELECT r.document_sha256, c.rule, c.scope, c.ok, c.detail"
    " FROM checks c JOIN reports r ON r.id = c.report_id",
    "findings": "SELECT r.document_sha256, g.code, g.message"
    " FROM findings g JOIN reports r ON r.id = g.report_id",
}


def _variant(data: bytes, suffix: str, copy: int) -> bytes:
    """Distinct bytes that parse to the same report (as bench/corpus.py makes them)."""
    if suffix == ".pdf":
        return data.rstrip(b"\r\n") + f"\n% nianbao test copy {copy}\n".encode()
    if suffix == ".html":
        return data + f"\n<!-- nianbao test copy {copy} -->\n".encode()
    return data + b"\n" + format(copy + 1, "b").replace("0", " ").replace("1", "\t").encode()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples and the real text reports (pingtan 2019, 2021, 2022 link by R5), copied."""
    folder = tmp_path_factory.mktemp("corpus")
    sources = [*SAMPLES.glob("*.pdf"), *SAMPLES.glob("*.html"), *SAMPLES.glob("*.txt")]
    sources += sorted(REAL.glob("*.txt"))
    for copy in range(COPIES):
        for path in sources:
            data = _variant(path.read_bytes(), path.suffix, copy)
            (folder / f"{copy}-{path.name}").write_bytes(data)
    return folder


def _content(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: sorted((tuple(row) for row in conn.execute(text(sql))), key=repr)
                for name, sql in CONTENT.items()
            }
    finally:
        engine.dispose()


def _documents(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM documents")).scalar_one()
    except Exception:  # the flow has not made the tables yet
        return 0
    finally:
        engine.dispose()


def _env(prefect_api: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        # The workers complete the warehouse URL, which reaches them without its password.
        "PGPASSWORD": PG_PASSWORD,
        # A chunk's parser is a child process of the worker (a nanny's worker is daemonic).
        "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
    }


def _ingest(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "nianbao"), "ingest", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # its own session, started by this test
    process.wait(10)


@pytest.fixture
def dask_cluster(prefect_api: str, tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, each in a session of its
    own (a worker's nanny, worker and parser process die together)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = _env(prefect_api, tmp_path)
    log = (tmp_path / "dask.log").open("w")
    started = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
            + ["--no-dashboard"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    ]
    try:
        for _ in range(2):
            started.append(
                subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1"]
                    + ["--host", "127.0.0.1", "--no-dashboard"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
        _wait_for_workers(address, 2)
        yield address
    finally:
        for process in reversed(started):
            _stop(process)
        log.close()


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=60)


def _busy_worker_pid(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=30) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            busy = [worker for worker, keys in client.processing().items() if keys]
            if busy:
                return client.run(os.getpid, workers=busy[:1])[busy[0]]
            time.sleep(0.05)
    raise AssertionError("no Dask worker was busy with a chunk")


def test_dask_run_with_a_worker_killed_loads_exactly_what_the_local_pool_loads(
    corpus: Path,
    pg_url: str,
    prefect_api: str,
    dask_cluster: str,
    tmp_path: Path,
) -> None:
    address = dask_cluster
    env = _env(prefect_api, tmp_path)
    total = len(list(corpus.iterdir()))
    local_url, dask_url = new_database(pg_url), new_database(pg_url)
    raw = ["--raw-dir", str(tmp_path / "raw")]

    local = _ingest([str(corpus), "--db", local_url, "--workers", "2", *raw], env)
    on_dask = _ingest([str(corpus), "--db", dask_url, "--cluster", address, *raw], env)
    # Once loading has begun, kill a worker busy with a chunk: its nanny, itself and its parser
    # process (a machine lost).
    deadline = time.monotonic() + 60
    while _documents(dask_url) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    loaded_when_killed = _documents(dask_url)
    os.killpg(os.getpgid(_busy_worker_pid(address)), signal.SIGKILL)
    out, err = on_dask.communicate(timeout=120)
    assert on_dask.returncode == 0, out + err[-3000:]
    assert 0 < loaded_when_killed < total, "the worker was not killed mid-run"
    assert f"documents seen: {total}" in out
    local_out, local_err = local.communicate(timeout=120)
    assert local.returncode == 0, local_out + local_err[-3000:]

    expected, got = _content(local_url), _content(dask_url)
    assert len(expected["documents"]) == total
    assert len(expected["facts"]) > 100 * total // 2
    assert {name: len(rows) for name, rows in got.items()} == {
        name: len(rows) for name, rows in expected.items()
    }
    for name in CONTENT:
        assert got[name] == expected[name], name
    # R5 linked the real Pingtan reports of 2021 and 2022 on both.
    assert any(check[1] == "R5" for check in got["checks"])


def test_local_dask_cluster_on_sqlite_loads_what_the_local_pool_loads(
    prefect_api: str, tmp_path: Path
) -> None:
    # SQLite has one writer: the Dask workers parse, and the flow's process loads.
    env = _env(prefect_api, tmp_path)
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("local", "dask")}
    raw = ["--raw-dir", str(tmp_path / "raw")]
    local = _ingest(["samples/", "--db", urls["local"], "--workers", "2", *raw], env)
    on_dask = _ingest(
        ["samples/", "--db", urls["dask"], "--workers", "2", "--cluster", "local", *raw], env
    )
    for process in (local, on_dask):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, out + err[-3000:]
        assert "6 loaded, 0 unchanged" in out
    expected, got = _content(urls["local"]), _content(urls["dask"])
    assert len(expected["facts"]) == 200 + 198 + 4 * 186
    for name in CONTENT:
        assert got[name] == expected[name], name
