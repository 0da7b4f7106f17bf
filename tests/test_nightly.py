"""Unattended runs, as the team that runs the nightly harvest meets them (issue 8).

Real components throughout: a Prefect server (the session's test server), PostgreSQL clusters
with password authentication, the fixture portal over HTTP on 127.0.0.1, `nianbao` as a
subprocess, SIGKILL of the main process alone, a database stopped mid-run, a full tmpfs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from nianbao.parsers import process_alive

from .conftest import PG_PASSWORD, new_database, start_cluster
from .helpers import ROOT, SAMPLES, rows
from .portal_server import LISTING, PortalSite

NIANBAO = str(Path(sys.executable).with_name("nianbao"))
PREFECT = str(Path(sys.executable).with_name("prefect"))
# The fixture portal's reports: path → year (tests/test_harvest.py says which is which).
PORTAL_REPORTS = {
    "/zwgk/nb/202401/P020240115.pdf": 2023,
    "/zwgk/nb/202301/t20230120_88.html": 2022,
    "/zwgk/nb/202201/W020220118.docx": 2021,
    "/zwgk/nb/202101/t20210125_50.html": 2020,
    "/zwgk/nb/201902/t20190130_10.html": 2019,
}
SAMPLE_DOCUMENTS = 6
SAMPLE_FACTS = 200 + 198 + 4 * 186


@pytest.fixture(scope="module")
def site() -> PortalSite:
    with PortalSite() as served:
        yield served


def _portals_file(site: PortalSite, folder: Path) -> Path:
    path = folder / "portals.toml"
    path.write_text(
        f'[[portal]]\nname = "互助县就业服务局"\nurl = "{site.url(LISTING)}"\n', "utf-8"
    )
    return path


def _counts(url: str) -> tuple[int, int, int]:
    ((documents, reports, facts),) = rows(
        url,
        "SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM reports),"
        " (SELECT COUNT(*) FROM facts)",
    )
    return documents, reports, facts


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 300, **popen):
    return subprocess.run(
        [NIANBAO, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        **popen,
    )


def _pdf_variants(folder: Path, count: int, first: int = 0) -> Path:
    """Distinct documents with a real report's content: a comment after %%EOF changes the hash."""
    data = (SAMPLES / "01_huaian_shizhengfu_2024.pdf").read_bytes()
    folder.mkdir()
    for index in range(first, first + count):
        (folder / f"report-{index:03d}.pdf").write_bytes(data + f"\n%variant {index}\n".encode())
    return folder


def _wait_for(condition, seconds: float, what: str, process=None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended before {what}")
        assert time.monotonic() < deadline, f"not {what} within {seconds:g} s"
        time.sleep(0.1)


def _flow_runs(flow_name: str, marker: str) -> list:
    """The flow runs of `flow_name` whose parameters mention `marker` (a test's own folder)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=200
        )
    return [run for run in runs if marker in json.dumps(run.parameters, ensure_ascii=False)]


def _logs(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs]


def _wait_for_log(flow_run_id, text: str, seconds: float = 15.0) -> bool:
    """Whether a log line of the flow run holds `text` within `seconds`."""
    deadline = time.monotonic() + seconds
    while not any(text in line for line in _logs(flow_run_id)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


# -- scheduled runs complete ------------------------------------------------------------------


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def _wait_for_deployment(name: str, process: subprocess.Popen, log: Path):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)


def test_a_served_deployment_run_completes_and_loads_the_reports(
    site: PortalSite, prefect_api: str, pg_url: str, tmp_path: Path
):
    from prefect.deployments import run_deployment

    db_url = new_database(pg_url)
    command = [NIANBAO, "serve", "--portals", str(_portals_file(site, tmp_path))]
    command += ["--cron", "0 2 * * *", "--db", db_url, "--raw-dir", str(tmp_path / "raw")]
    command += ["--delay", "0"]
    log = tmp_path / "serve.log"
    # The serving process looks for runs due every second rather than every 10 s (Prefect's
    # default), so that the run asked for below starts without waiting for its next look.
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    env.pop("NIANBAO_DB", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deployment = _wait_for_deployment("nianbao-harvest/nightly-serve", process, log)
        # The password stays in the serving process: Prefect holds a reference.
        assert PG_PASSWORD not in json.dumps(deployment.parameters)
        assert deployment.parameters["db_url"] == db_url.replace(f":{PG_PASSWORD}@", "@")
        (schedule,) = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (
            "0 2 * * *",
            "Asia/Shanghai",
        )
        run = run_deployment("nianbao-harvest/nightly-serve", timeout=240, poll_interval=1)
        # The serving process ships the run's logs to the server every few seconds: they are
        # read while it still runs (stopped at once, it may not have sent the last batch).
        portal_logged = _wait_for_log(run.id, "portal 互助县就业服务局")
    finally:
        _stop(process)
    assert run.state.is_completed(), f"{run.state!r}\n{log.read_text()}"
    years = rows(
        db_url,
        "SELECT d.source, r.year FROM documents d JOIN reports r ON r.document_sha256 = d.sha256",
    )
    assert {urlsplit(source).path: year for source, year in years} == PORTAL_REPORTS
    assert portal_logged


def test_prefect_yaml_deploys_to_a_process_pool_whose_worker_completes_the_run(
    site: PortalSite, prefect_api: str, tmp_path: Path
):
    from prefect.deployments import run_deployment

    home = tmp_path / "home"
    home.mkdir()
    _portals_file(site, home)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "NIANBAO_DB": "sqlite:///warehouse.db"}

    def prefect(*args: str) -> None:
        done = subprocess.run(
            [PREFECT, "--no-prompt", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    prefect("work-pool", "create", "nianbao", "--type", "process", "--overwrite")
    prefect("variable", "set", "nianbao_home", str(home), "--overwrite")
    prefect("deploy", "--name", "nightly")
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "nianbao"],
            cwd=tmp_path,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        run = run_deployment(
            "nianbao-harvest/nightly",
            parameters={"client_settings": {"min_interval": 0}},
            timeout=300,
        )
    finally:
        _stop(worker)
    assert run.state.is_completed(), f"{run.state!r}\n{log.read_text()}"
    loaded = rows(f"sqlite:///{home / 'warehouse.db'}", "SELECT year FROM reports")
    assert sorted(year for (year,) in loaded) == sorted(PORTAL_REPORTS.values())
    # The raw store is in nianbao_home: every report's bytes, named by their sha256.
    stored = {p.stem for p in (home / "raw").rglob("*") if p.is_file()}
    shas = rows(f"sqlite:///{home / 'warehouse.db'}", "SELECT document_sha256 FROM reports")
    assert {sha for (sha,) in shas} <= stored


# -- the run's state tells the truth, with no password in it ------------------------------------


def test_an_ingest_with_a_failed_document_ends_failed_and_keeps_the_password_out(
    prefect_api: str, pg_url: str, tmp_path: Path
):
    from prefect.client.orchestration import get_client

    db_url = new_database(pg_url)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for sample in SAMPLES.glob("huzhu-employment-2023.*"):
        (corpus / sample.name).write_bytes(sample.read_bytes())
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj garbage")
    done = _run(
        ["ingest", str(corpus), "--db", db_url, "--raw-dir", str(tmp_path / "raw")],
        env={"PREFECT_API_URL": prefect_api},
    )
    assert done.returncode == 1, done.stderr
    assert "corrupt_pdf" in done.stdout and PG_PASSWORD not in done.stdout + done.stderr

    (run,) = _flow_runs("nianbao-ingest", str(corpus))
    assert run.state.is_failed()
    assert run.state.message == "1 of 5 documents failed (corrupt_pdf 1)"
    assert PG_PASSWORD not in json.dumps(run.parameters)
    logs = _logs(run.id)
    assert any(line.startswith("batch of") for line in logs)
    assert not any(PG_PASSWORD in line for line in logs)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    assert not any(PG_PASSWORD in json.dumps(a.data, ensure_ascii=False) for a in artifacts)


def test_a_harvest_with_a_dead_portal_ends_failed(
    site: PortalSite, prefect_api: str, tmp_path: Path
):
    portals = _portals_file(site, tmp_path)
    # A column taken down: its listing page answers 404, which is not retried. (A closed port
    # is, with back-off, ~14 s; test_harvest.py has the harvest fail such a portal too.)
    with portals.open("a", encoding="utf-8") as out:
        out.write(f'[[portal]]\nname = "dead"\nurl = "{site.url("/gone/nb/")}"\n')
    done = _run(
        ["harvest", "--portals", str(portals), "--delay", "0", "--raw-dir", str(tmp_path / "raw")]
        + ["--db", f"sqlite:///{tmp_path / 'w.db'}"],
        env={"PREFECT_API_URL": prefect_api},
    )
    assert done.returncode == 1, done.stderr
    assert "dead: FAILED" in done.stdout
    (run,) = _flow_runs("nianbao-harvest", str(tmp_path))
    assert run.state.is_failed()
    assert run.state.message.startswith("1 of 2 portals failed (dead)")


# -- a killed run leaves nothing behind ---------------------------------------------------------


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_sigkill_of_the_main_process_alone_leaves_nothing_behind(
    prefect_api: str, pg_url: str, tmp_path: Path
):
    db_url = new_database(pg_url)
    corpus = _pdf_variants(tmp_path / "corpus", 30)
    args = ["ingest", str(corpus), "--db", db_url, "--raw-dir", str(tmp_path / "raw"), "-w", "2"]
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    process = subprocess.Popen(
        [NIANBAO, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(
            lambda: rows(db_url, "SELECT to_regclass('reports')")[0][0] is not None,
            120,
            "the schema made",
            process,
        )
        _wait_for(lambda: _counts(db_url)[1] >= 3, 180, "3 reports loaded", process)
        workers = _descendants(process.pid)
        assert workers, "the parser workers should be running"
        os.kill(process.pid, signal.SIGKILL)  # the main process only, not its group
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    _wait_for(lambda: not any(process_alive(pid) for pid in workers), 15, "the workers gone")
    loaded = _counts(db_url)[1]
    assert loaded < 30, "the kill must land half way for this test to mean anything"
    # The killed run's session is gone with it: no transaction left open on the server.
    stale = rows(
        db_url,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
        " AND pid <> pg_backend_pid()",
    )[0][0]
    assert stale == 0

    started = time.monotonic()
    rerun = _run(args, env={"PREFECT_API_URL": prefect_api}, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert time.monotonic() - started < 240
    assert "marked 1 run(s) of killed processes as Crashed" in rerun.stderr
    assert _counts(db_url) == (30, 30, 30 * 200)
    runs = _flow_runs("nianbao-ingest", str(corpus))
    assert sorted(run.state.type.value for run in runs) == ["COMPLETED", "CRASHED"]


def test_sigkill_of_a_run_alone_stops_its_temporary_prefect_server(tmp_path: Path):
    # No PREFECT_API_URL: the run starts a Prefect server of its own, the default on a laptop.
    # Regression: a SIGKILL of the run alone left that server running, orphaned, for good.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    corpus = _pdf_variants(tmp_path / "corpus", 30)
    raw = tmp_path / "raw"
    args = ["ingest", str(corpus), "--db", f"sqlite:///{tmp_path / 'w.db'}", "--raw-dir", str(raw)]
    process = subprocess.Popen(
        [NIANBAO, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # The flow plans (and keeps files) only once its server answers.
        _wait_for(lambda: any(raw.rglob("*.pdf")), 180, "files kept", process)
        servers = [pid for pid in _descendants(process.pid) if b"uvicorn" in _command(pid)]
        assert len(servers) == 1, "the run should have started one Prefect server"
        os.kill(process.pid, signal.SIGKILL)  # the main process only, not its group
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    _wait_for(lambda: not process_alive(servers[0]), 20, "the server gone")


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_lock_held_by_another_session_stops_the_run_with_a_clear_message(
    prefect_api: str, pg_url: str, tmp_path: Path
):
    db_url = new_database(pg_url)
    _run(["db", "upgrade", "--db", db_url])
    args = ["ingest", str(SAMPLES), "--db", db_url, "--raw-dir", str(tmp_path / "raw")]
    env = {
        "PREFECT_API_URL": prefect_api,
        "NIANBAO_DB_LOCK_TIMEOUT": "1",
        "NIANBAO_DB_RETRY_SECONDS": "3",
    }
    conninfo = db_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo) as holder:
        holder.execute("LOCK TABLE facts IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        blocked = _run(args, env=env, timeout=120)
        elapsed = time.monotonic() - started
        holder.rollback()
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert "lock timeout" in blocked.stdout
    assert "STOPPED before the end" in blocked.stdout
    assert elapsed < 90
    rerun = _run(args, env={"PREFECT_API_URL": prefect_api})
    assert rerun.returncode == 0, rerun.stderr
    assert _counts(db_url) == (SAMPLE_DOCUMENTS, SAMPLE_DOCUMENTS, SAMPLE_FACTS)


def test_a_database_outage_mid_run_is_waited_out_or_stops_with_the_summary(
    prefect_api: str, tmp_path: Path
):
    cluster = start_cluster()
    try:
        db_url = new_database(cluster.url)
        corpus = _pdf_variants(tmp_path / "corpus", 24)
        args = ["ingest", str(corpus), "--db", db_url, "--raw-dir", str(tmp_path / "raw")]

        def outage(
            retry_seconds: str, loaded_before: int, back_when
        ) -> subprocess.CompletedProcess[str]:
            """Stop the server once the run has loaded 2 reports; start it again once
            `back_when(process, stderr lines so far)` holds."""
            env = {**os.environ, "PREFECT_API_URL": prefect_api}
            env["NIANBAO_DB_RETRY_SECONDS"] = retry_seconds
            process = subprocess.Popen(
                [NIANBAO, *args],
                env=env,
                cwd=ROOT,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            # Read as the run writes, so that the test can act on what its stderr says.
            out: list[str] = []
            err: list[str] = []
            readers = [
                threading.Thread(target=lambda s=stream, into=into: into.extend(s))
                for stream, into in ((process.stdout, out), (process.stderr, err))
            ]
            for reader in readers:
                reader.start()
            try:
                _wait_for(
                    lambda: _table_count(db_url) >= loaded_before + 2,
                    180,
                    "2 reports loaded",
                    process,
                )
                cluster.stop()
                _wait_for(lambda: back_when(process, err), 180, "the outage met")
                cluster.start()
                process.wait(timeout=300)
            finally:
                if process.poll() is None:  # a run that did not end must not outlive the test
                    process.kill()
                    process.wait()
            for reader in readers:
                reader.join(timeout=10)
            return subprocess.CompletedProcess(args, process.returncode, "".join(out), "".join(err))

        # Down until the run has given up on its own: it must end while the server is away.
        gave_up = outage("5", 0, lambda process, _: process.poll() is not None)
        assert gave_up.returncode == 3, gave_up.stdout + gave_up.stderr
        assert "STOPPED before the end" in gave_up.stdout
        assert "database unavailable for 5 s, gave up" in gave_up.stdout
        assert "Traceback" not in gave_up.stderr

        # The next run converges; then one that meets an outage lasting longer than the 5 s
        # the first run gave up after (counted from its first failed attempt) finishes on
        # its own.
        rerun = _run(args, env={"PREFECT_API_URL": prefect_api})
        assert rerun.returncode == 0, rerun.stderr
        assert _counts(db_url) == (24, 24, 24 * 200)
        more = _pdf_variants(tmp_path / "more", 24, first=24)
        args[1] = str(more)
        met: list[float] = []

        def outlived(process: subprocess.Popen, err: list[str]) -> bool:
            assert process.poll() is None, "the run ended while the database was away"
            if not met and any("database unavailable, retrying" in line for line in err):
                met.append(time.monotonic())
            return bool(met) and time.monotonic() - met[0] > 6

        waited = outage("120", 24, outlived)
        assert waited.returncode == 0, waited.stdout + waited.stderr
        assert "database unavailable, retrying" in waited.stderr
        assert _counts(db_url) == (48, 48, 48 * 200)
    finally:
        cluster.remove()


def _table_count(db_url: str) -> int:
    try:
        return _counts(db_url)[1]
    except Exception:  # the schema is not made yet, or the server is away
        return 0


# -- migrations are safe to race ----------------------------------------------------------------


def test_concurrent_upgrades_and_ingests_of_an_empty_database_all_succeed(
    prefect_api: str, pg_url: str, tmp_path: Path
):
    for trial in range(4):
        db_url = new_database(pg_url)
        commands = [[NIANBAO, "db", "upgrade", "--db", db_url] for _ in range(2)]
        if trial == 0:
            commands.append(
                [NIANBAO, "ingest", str(SAMPLES / "huzhu-employment-2023.txt"), "--db", db_url]
                + ["--raw-dir", str(tmp_path / "raw")]
            )
        env = {**os.environ, "PREFECT_API_URL": prefect_api}
        processes = [
            subprocess.Popen(
                c, env=env, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for c in commands
        ]
        for process in processes:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, out + err
        assert rows(db_url, "SELECT version_num FROM alembic_version")


# -- one line, and the exit status of its kind -------------------------------------------------


@pytest.fixture(scope="module")
def tiny_disk(tmp_path_factory: pytest.TempPathFactory):
    """A 512 KiB tmpfs, where the machine lets us mount one; else a skip."""
    mount = tmp_path_factory.mktemp("tiny")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def read_only_disk(tmp_path: Path):
    """A read-only tmpfs: root writes anywhere else, so a folder's mode proves nothing."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_raw_dir_is_one_line(read_only_disk: Path, tmp_path: Path):
    done = _run(
        ["ingest", "samples/", "--db", f"sqlite:///{tmp_path / 'w.db'}"]
        + ["--raw-dir", str(read_only_disk / "raw")],
        timeout=60,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "Read-only file system" in _one_error_line(done)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("options", "status", "says"),
    [
        (["--db", "notaurl"], 2, "is not a database URL"),
        (["--db", "mysql://etl@db/warehouse"], 2, "mysql is not supported"),
        (["--db", "postgresql://etl:pw@127.0.0.1:1/warehouse"], 3, "Connection refused"),
        (["-w", "0"], 2, "must be at least 1"),
        (["--timeout", "-1"], 2, "must be a number of seconds above 0"),
        (["--raw-dir", "README.md/raw"], 4, "Not a directory"),
    ],
)
def test_bad_arguments_and_broken_infrastructure_are_one_line(
    options: list[str], status: int, says: str
):
    done = _run(["ingest", "samples/", *options], timeout=60)
    assert done.returncode == status, done.stderr
    line = _one_error_line(done)
    assert says in line and ":pw@" not in line


def test_a_wrong_password_is_one_line(pg_url: str):
    wrong = pg_url.replace(PG_PASSWORD, "not-the-password")
    done = _run(["db", "upgrade", "--db", wrong], timeout=60)
    assert done.returncode == 3
    line = _one_error_line(done)
    assert "password authentication failed" in line and "not-the-password" not in line


def test_debug_shows_the_traceback():
    done = _run(["--debug", "db", "upgrade", "--db", "postgresql://etl@127.0.0.1:1/w"], timeout=60)
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(
    tiny_disk: Path, prefect_api: str, tmp_path: Path
):
    done = _run(
        [
            "ingest",
            "samples/",
            "--db",
            f"sqlite:///{tmp_path / 'w.db'}",
            "--raw-dir",
            str(tiny_disk),
        ],
        env={"PREFECT_API_URL": prefect_api},
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "No space left on device" in _one_error_line(done)
    assert not list(tiny_disk.rglob(".part-*"))


# -- runs without a Prefect server ---------------------------------------------------------------


@pytest.mark.slow
def test_overlapping_runs_without_a_prefect_server_all_succeed(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # new: the slowest first start
    processes = []
    for index in range(3):
        command = [NIANBAO, "ingest", str(SAMPLES / "huzhu-employment-2023.txt")]
        command += ["--db", f"sqlite:///{tmp_path / f'w{index}.db'}"]
        command += ["--raw-dir", str(tmp_path / f"raw{index}")]
        processes.append(
            subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for index, process in enumerate(processes):
        out, err = process.communicate(timeout=400)
        assert process.returncode == 0, out + err
        assert err.splitlines()[0].startswith("nianbao: starting a temporary Prefect server")
        assert _counts(f"sqlite:///{tmp_path / f'w{index}.db'}") == (1, 1, 186)
