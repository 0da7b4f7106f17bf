"""`nianbao ingest --cluster`: a real Dask scheduler and two workers on 127.0.0.1, loading into a
real PostgreSQL, one worker killed half way; the warehouse must hold exactly the rows a run on the
local parser pool writes. And a scheduler that gives up on a task at its first dead worker: the
run splits the chunk, a document Dask gives up on alone is recorded as `worker_crashed`, and the
task runs Dask gave up on are Crashed."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import create_engine, text

from .conftest import PG_PASSWORD, _free_port, new_database
from .helpers import REAL, ROOT, SAMPLES, WAREHOUSE_CONTENT, warehouse_content

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BIN = Path(sys.executable).parent
COPIES = 3  # of each document, with bytes of their own: enough work to kill a worker mid-run

# The warehouse's rows, by content: ids, times and run ids differ between any two runs, and
# which of several reports of one agency and year is current depends on their load order.


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
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    yield from _dask_cluster(_env(prefect_api, tmp_path), tmp_path)


@pytest.fixture
def dask_cluster_giving_up(prefect_api: str, tmp_path: Path) -> Iterator[str]:
    """A scheduler with one worker, which gives up on a task the first time a worker dies
    holding it (KilledWorker), instead of running it again elsewhere."""
    env = {**_env(prefect_api, tmp_path), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    yield from _dask_cluster(env, tmp_path, workers=1)


def _dask_cluster(env: dict[str, str], tmp_path: Path, workers: int = 2) -> Iterator[str]:
    """A scheduler and `workers` workers, each in a session of its own (a worker's nanny,
    worker and parser process die together); a nanny restarts its worker if it dies alone."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
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
        for _ in range(workers):
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
        _wait_for_workers(address, workers)
        yield address
    finally:
        for process in reversed(started):
            _stop(process)
        log.close()


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=60)


def _splits(url: str) -> list[str]:
    """What the ingest run into the warehouse `url` has logged to Prefect so far of chunks
    Dask gave up on and it split."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            flow_run_id = conn.execute(text("SELECT flow_run_id FROM runs")).scalar_one_or_none()
    except Exception:  # the flow has not made the tables yet
        return []
    finally:
        engine.dispose()
    if flow_run_id is None:
        return []
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)]))
        )
    # str(KilledWorker) is Dask's explanation: "… all those workers died while running it".
    return [
        log.message
        for log in logs
        if log.message.startswith("chunk of") and log.message.endswith(": split")
    ]


def _busy_worker_pid(address: str) -> int:
    """The pid of a Dask worker process with a task to run."""
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

    expected, got = warehouse_content(local_url), warehouse_content(dask_url)
    assert len(expected["documents"]) == total
    assert len(expected["facts"]) > 100 * total // 2
    assert {name: len(rows) for name, rows in got.items()} == {
        name: len(rows) for name, rows in expected.items()
    }
    for name in WAREHOUSE_CONTENT:
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
    expected, got = warehouse_content(urls["local"]), warehouse_content(urls["dask"])
    assert len(expected["facts"]) == 200 + 198 + 4 * 186
    for name in WAREHOUSE_CONTENT:
        assert got[name] == expected[name], name


def test_a_chunk_dask_gives_up_on_is_split_and_every_document_accounted_for(
    corpus: Path,
    pg_url: str,
    prefect_api: str,
    dask_cluster_giving_up: str,
    tmp_path: Path,
) -> None:
    address = dask_cluster_giving_up
    env = _env(prefect_api, tmp_path)
    # One copy of eight documents, one chunk (fewer than DASK_SMALLEST_CHUNK) on the cluster's
    # one worker; the slowest (the PDF) last, so that the last document takes a while.
    files = sorted(map(str, sorted(corpus.glob("0-*"))[:8]), key=lambda f: f.endswith(".pdf"))
    last = hashlib.sha256(Path(files[-1]).read_bytes()).hexdigest()
    local_url, dask_url = new_database(pg_url), new_database(pg_url)
    raw = ["--raw-dir", str(tmp_path / "raw")]

    local = _ingest([*files, "--db", local_url, "--workers", "2", *raw], env)
    on_dask = _ingest([*files, "--db", dask_url, "--cluster", address, *raw], env)
    # Kill the worker process (not its nanny) inside the chunk, before it loaded anything: Dask
    # gives up on the chunk at once (allowed failures 0), the run splits it into single
    # documents, and the nanny starts a new worker.
    _kill_worker_inside(address, on_dask, dask_url, loaded=0)
    # Then inside the last document, once every other one is loaded: Dask gives up on it
    # alone, and it is recorded `worker_crashed`.
    _kill_worker_inside(address, on_dask, dask_url, loaded=len(files) - 1)
    out, err = on_dask.communicate(timeout=120)
    assert on_dask.returncode == 1, out + err[-3000:]
    assert [split.split(" (")[0] for split in _splits(dask_url)] == [
        f"chunk of {len(files)} failed"
    ]
    assert f"documents seen: {len(files)}" in out
    assert "failed by reason: worker_crashed 1\n" in out
    local_out, local_err = local.communicate(timeout=120)
    assert local.returncode == 0, local_out + local_err[-3000:]

    expected, got = warehouse_content(local_url), warehouse_content(dask_url)
    assert len(expected["documents"]) == len(got["documents"]) == len(files)
    # The document Dask gave up on alone is recorded so, with Dask's reason; every other
    # document has exactly the rows of the local run.
    (crashed,) = [row for row in got["documents"] if row[6] == "worker_crashed"]
    assert crashed[0] == last and "KilledWorker" in crashed[7]
    for name in WAREHOUSE_CONTENT:
        if name != "current":
            assert [r for r in got[name] if r[0] != last] == [
                r for r in expected[name] if r[0] != last
            ], name
    # The two task runs that were Running when their worker died (the chunk's, the last
    # document's) are Crashed with Dask's reason, not left Running.
    states = _task_run_states(dask_url)
    assert "RUNNING" not in [state for state, _ in states]
    crashed_runs = [message for state, message in states if state == "CRASHED"]
    assert len(crashed_runs) == 2
    assert all("KilledWorker" in message for message in crashed_runs)
    assert [state for state, _ in states].count("COMPLETED") == len(files) - 1


def _kill_worker_inside(address: str, run: subprocess.Popen, url: str, loaded: int) -> None:
    """Kill the cluster's one worker process while it is inside a task and the warehouse at
    `url` holds `loaded` documents, and make sure they were not more when it died.

    The worker's parser processes are stopped (SIGSTOP) first: a stopped parser loads nothing,
    so the document it has is provably not loaded when it dies. The worker itself runs on, so
    that the task before ends and this one's Running state reaches Prefect; then it dies with
    its parsers."""
    from distributed import Client

    def parsers() -> tuple[int, list[int]]:
        # Runs in the worker: its pid and its parser processes' (cloudpickled by value).
        return os.getpid(), [child.pid for child in multiprocessing.active_children()]

    with Client(address, timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, "the run ended before its worker was killed"
            assert time.monotonic() < deadline, f"the warehouse never held {loaded} documents"
            busy = [worker for worker, keys in client.processing().items() if keys]
            if busy and _documents(url) == loaded:
                pid, children = client.run(parsers, workers=busy)[busy[0]]
                if children:  # the worker has begun a task: its parser is started for it
                    break
            time.sleep(0.05)
        for child in children:
            os.kill(child, signal.SIGSTOP)
        assert _documents(url) == loaded, "a document was loaded before its parser stopped"
        # Every task before this one has ended, and this one is Running, in Prefect's view.
        while (states := Counter(state for state, _ in _task_run_states(url)))[
            "COMPLETED"
        ] != loaded or not states["RUNNING"]:
            assert time.monotonic() < deadline, f"no task run was Running: {states}"
            time.sleep(0.1)
        for process in [pid, *children]:
            os.kill(process, signal.SIGKILL)


def _task_run_states(url: str) -> list[tuple[str, str]]:
    """(state type, message) of each parse-and-load task run of the ingest run into `url`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    engine = create_engine(url)
    with engine.connect() as conn:
        flow_run_id = conn.execute(text("SELECT flow_run_id FROM runs")).scalar_one()
    engine.dispose()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
        )
    # A task run is created before its first state is set: read between the two, it has none.
    return [
        (run.state.type.value, run.state.message or "") if run.state else ("NO STATE", "")
        for run in runs
        if run.name.startswith("parse-and-load")
    ]


def test_a_task_run_dask_gave_up_on_is_crashed_only_if_it_has_not_ended(prefect_api: str):
    # `_mark_crashed` proposes Crashed without forcing it: Prefect's task policy takes it over
    # Running and refuses it over a final state, so a Completed state that reached the server
    # before it (the worker died after its task ended) stays. A task run Prefect does not know
    # is reported as such, to be tried again.
    from uuid import uuid4

    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running

    from nianbao.flows.ingest import _mark_crashed

    @task
    def chunk() -> None: ...

    @flow
    def run() -> None: ...

    # What a real KilledWorker says needs a scheduler's worker state; only its text is used.
    gave_up = RuntimeError("Dask gave up on parse_chunk-1")
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(run, state=Running())
        running, completed = (
            client.create_task_run(chunk, flow_run.id, key, state=state).id
            for key, state in (("running", Running()), ("completed", Completed()))
        )
        assert _mark_crashed(running, gave_up) and _mark_crashed(completed, gave_up)
        assert not _mark_crashed(uuid4(), gave_up)
        crashed = client.read_task_run(running).state
        assert crashed.type.value == "CRASHED" and "gave up on parse_chunk-1" in crashed.message
        assert client.read_task_run(completed).state.type.value == "COMPLETED"
