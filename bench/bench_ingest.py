"""Ingest throughput: the real `nianbao ingest` on a corpus made from the samples.

Run from the repository root (about 5 minutes on 2 cores with the defaults):

    .venv/bin/python bench/bench_ingest.py                 # 300 documents, SQLite
    .venv/bin/python bench/bench_ingest.py --docs 120 --no-server --postgres
    .venv/bin/python bench/bench_ingest.py --repeat 2      # fastest of 2 runs each (~10 min)

In one invocation, into a temporary folder it deletes afterwards, it measures:

- parse only: the same documents through a bare ProcessPoolExecutor (1 and 2 workers, jieba loaded
  once a worker, only each document's status sent back: shipping a result to a loader is not
  parsing; no Prefect, no database, no raw store);
- `nianbao ingest` as a subprocess, into a new SQLite file and raw folder each run, with
  --workers 1 and 2, and over an empty folder (the fixed cost of one run: interpreter, imports,
  migrations check, Prefect start-up, flow run, R5, artifacts), in two Prefect modes:
  `ephemeral` (no PREFECT_API_URL: each run starts a temporary server, what `nianbao ingest` does
  on a laptop) and `server` (a long-lived `prefect server start` started here, as in production);
- optionally (`--postgres`) the same against a throwaway PostgreSQL cluster.

The share outside parsing is 1 − parse_only / ingest for the same worker count, shown with the
fixed per-run cost included and with it subtracted (ingest − empty run). Read the aim
(< 15 %) against the second in `server` mode: see bench/README.md.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# bench/corpus.py: run as a script (`python bench/bench_ingest.py`), bench/ is on sys.path.
from corpus import make_corpus

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 600  # seconds; one run of 300 documents takes ~30–60 s here


# --- parse only (runs in a subprocess of its own: `bench_ingest.py --parse-only DIR N`) ---------


def _start_parser() -> None:
    # What the ingest's worker initializer does: load jieba's dictionary once a process.
    from nianbao.parsers.sections import load_tokenizer

    load_tokenizer()


def _parse_path(path: str) -> tuple[str, int, float]:
    from nianbao.parsers.report import parse_file

    # The status only: an ingest's worker sends no parse result back, and pickling one both
    # ways cost the baseline CPU that is not parsing. With the worker and its parsing thread's
    # CPU once the document is done, for the CPU a document between a worker's documents.
    status = parse_file(path).status
    return status, os.getpid(), time.thread_time()


def parsing_between_documents(done: list[tuple[int, float]]) -> tuple[float, int]:
    """The parsing threads' CPU seconds from each worker's first document done to its last, and
    the documents done in those spans: from (worker, its thread's CPU once a document was
    done), in any order. Start-up and the first document's parse fall outside, as outside an
    ingest's window of documents."""
    by_worker: dict[int, list[float]] = {}
    for worker, cpu in done:
        by_worker.setdefault(worker, []).append(cpu)
    spans = [(max(times) - min(times), len(times) - 1) for times in by_worker.values()]
    return sum(cpu for cpu, _ in spans), sum(documents for _, documents in spans)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def parse_only(folder: str, workers: int) -> dict:
    files = sorted(str(p) for p in Path(folder).iterdir() if p.is_file())
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=_start_parser) as pool:
        done = list(pool.map(_parse_path, files, chunksize=1))
    seconds = time.perf_counter() - start
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu
    statuses = [status for status, _, _ in done]
    parsing, parsing_documents = parsing_between_documents([(w, t) for _, w, t in done])
    return {
        "seconds": seconds,
        "cpu": cpu,
        "parsed": statuses.count("parsed"),
        "parsing": parsing,
        "parsing_documents": parsing_documents,
    }


# --- runs ----------------------------------------------------------------------------------------


@dataclass
class Run:
    mode: str  # "parse only", "ephemeral", "server", "postgres"
    workers: int  # 0 for the run over an empty folder
    seconds: float  # wall
    cpu: float  # user + system, every process of the run (and the server's, in server mode)
    documents: int
    # Parse only: its workers' parsing threads' CPU seconds between their documents, and the
    # documents done in those spans (`parsing_between_documents`).
    parsing: float | None = None
    parsing_documents: int = 0


def _env(prefect_home: Path, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def run_parse_only(folder: Path, workers: int) -> Run:
    cmd = [sys.executable, __file__, "--parse-only", str(folder), str(workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    documents = sum(1 for p in folder.iterdir() if p.is_file())
    if out["parsed"] != documents:
        sys.exit(f"parse only: {out['parsed']} of {documents} documents parsed")
    parsing = (out["parsing"], out["parsing_documents"])
    return Run("parse only", workers, out["seconds"], out["cpu"], documents, *parsing)


@dataclass
class Target:
    """Where a mode's runs go: Prefect settings, an optional server to bill, a database."""

    mode: str
    env: dict[str, str]
    server_group: int | None = None  # process group of a long-lived Prefect server
    new_database: Callable[[], str] | None = None  # PostgreSQL; SQLite files otherwise


def _group_cpu(group: int | None) -> float:
    """CPU seconds used so far by the live processes of a process group and by the children
    they reaped (from /proc): PostgreSQL's backend of a connection exits when the run ends, and
    its CPU is then only in the postmaster's cutime."""
    if group is None:
        return 0.0
    return proc_cpu(lambda pid, fields: int(fields[2]) == group)  # pgrp


def proc_cpu(counted: Callable[[int, list[str]], bool]) -> float:
    """CPU seconds (utime, stime, cutime, cstime) used so far by the live processes that
    `counted(pid, fields of /proc/PID/stat after the command name)` picks."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if counted(int(stat.parent.name), fields):
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


_run_numbers = itertools.count()


def run_ingest(target: Target, folder: Path, workers: int, work: Path) -> Run:
    tag = f"{target.mode}-{next(_run_numbers)}"  # a new database and raw folder every run
    db_url = target.new_database() if target.new_database else f"sqlite:///{work / tag}.db"
    cmd = [str(BIN / "nianbao"), "ingest", str(folder), "--db", db_url, "--workers", str(workers)]
    cmd += ["--raw-dir", str(work / f"raw-{tag}")]
    cpu = _cpu(resource.RUSAGE_CHILDREN) + _group_cpu(target.server_group)
    start = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=target.env, cwd=work
    )
    seconds = time.perf_counter() - start
    cpu = _cpu(resource.RUSAGE_CHILDREN) + _group_cpu(target.server_group) - cpu
    documents = sum(1 for p in folder.iterdir() if p.is_file())
    if done.returncode != 0 or f"{documents} loaded" not in done.stdout:
        sys.exit(f"{tag} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return Run(target.mode, workers if documents else 0, seconds, cpu, documents)


# --- a long-lived Prefect server ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, seconds: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group, started by us
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


@contextmanager
def prefect_server(work: Path):
    """`prefect server start` in the background, in a process group of its own; yields
    (API URL, process group), or None if it did not come up within 90 s."""
    port = _free_port()
    home = work / "prefect-server-home"
    home.mkdir()
    log = (work / "prefect-server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(home, None),
        cwd=work,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        started = time.perf_counter()
        if _wait_for(f"{api}/health", 90, proc):
            print(f"  prefect server up in {time.perf_counter() - started:.1f} s", flush=True)
            yield api, proc.pid
        else:
            print("  prefect server did not start; skipping server mode", flush=True)
            yield None
    finally:
        _stop_group(proc)
        log.close()


# --- a throwaway PostgreSQL cluster (as in tests/conftest.py) ------------------------------------


@contextmanager
def postgres_cluster(work: Path, settings: str = ""):
    """Yields a function that creates a database and returns its URL; None without PostgreSQL.

    `settings` are more server options (`-c name=value ...`)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        print("  no /usr/lib/postgresql/*/bin/initdb; skipping PostgreSQL", flush=True)
        yield None
        return
    bindir = Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent
    root = work / "pg"
    root.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(work, 0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    port, data = _free_port(), root / "data"

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    run(*initdb, "--no-sync", "-E", "UTF8", "--locale=C")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c fsync=off -k {root} {settings}"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    run(*pg_ctl, "start", "-w", "-t", "60", "-l", str(root / "log"), "-o", options)
    names = iter(range(1000))

    def new_database() -> str:
        import psycopg

        name = f"bench_{next(names)}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

    try:
        yield new_database
    finally:
        run(*pg_ctl, "stop", "-m", "immediate")


# --- report --------------------------------------------------------------------------------------


def _share(part: float, whole: float) -> str:
    return f"{1 - part / whole:.1%}" if whole > 0 else "—"


def _row(cells: list[str]) -> str:
    widths = [12, 8, 8, 10, 8, 9, 9, 12][: len(cells)]
    return "".join(
        f"{c:>{w}}" if i else f"{c:{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def report(all_runs: list[Run]) -> None:
    # With --repeat, the fastest of a configuration's runs: other users' load only ever adds.
    best: dict[tuple[str, int], Run] = {}
    for r in all_runs:
        key = (r.mode, r.workers)
        if key not in best or r.seconds < best[key].seconds:
            best[key] = r
    runs = list(best.values())
    parse = {r.workers: r for r in runs if r.mode == "parse only"}
    empty = {r.mode: r for r in runs if r.workers == 0}
    print()
    if len(all_runs) > len(runs):
        print("fastest of the repeated runs of each configuration")
    print("share of the run outside parsing = 1 − parse only / ingest, same worker count;")
    print("'− fixed': with the empty-folder run of the same mode subtracted from the ingest")
    print(
        _row(
            ["run", "workers", "wall s", "reports/s", "CPU s", "outside", "− fixed", "CPU − fixed"]
        )
    )
    for r in runs:
        cells = [r.mode, "empty" if r.workers == 0 else str(r.workers), f"{r.seconds:.1f}"]
        cells += ["" if r.workers == 0 else f"{r.documents / r.seconds:.2f}", f"{r.cpu:.1f}"]
        base = parse.get(r.workers)
        if r.workers and r.mode != "parse only" and base:
            fixed = empty.get(r.mode, Run(r.mode, 0, 0.0, 0.0, 0))
            cells += [_share(base.seconds, r.seconds)]
            cells += [_share(base.seconds, r.seconds - fixed.seconds)]
            cells += [_share(base.cpu, r.cpu - fixed.cpu)]
        print(_row(cells))
    print()
    print("2 workers vs 1, wall (and without the fixed cost of a run):")
    for mode in dict.fromkeys(r.mode for r in runs):
        by = {r.workers: r.seconds for r in runs if r.mode == mode}
        if 1 in by and 2 in by:
            fixed = empty[mode].seconds if mode in empty else 0.0
            net = (by[1] - fixed) / (by[2] - fixed)
            print(f"  {mode:12}{by[1] / by[2]:6.2f}x  ({net:.2f}x)")


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="documents in the corpus")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-server", action="store_true", help="skip the long-lived server mode")
    parser.add_argument("--postgres", action="store_true", help="also load into PostgreSQL")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--parse-only", nargs=2, metavar=("DIR", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parse_only:
        print(json.dumps(parse_only(args.parse_only[0], int(args.parse_only[1]))))
        return

    # A kill runs the clean-up below too: the temporary folder, the Prefect and PostgreSQL servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="nianbao-bench-ingest-"))
    try:
        corpus, empty = work / "corpus", work / "empty"
        mix = make_corpus(corpus, args.docs)
        empty.mkdir()
        size = sum(p.stat().st_size for p in corpus.iterdir()) / 2**20
        formats = ", ".join(f"{n} {f}" for f, n in sorted(mix.items()))
        print(f"corpus: {args.docs} documents ({formats}; {size:.1f} MB); {os.cpu_count()} CPUs")
        print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
        runs: list[Run] = []

        def note(run: Run) -> None:
            runs.append(run)
            what = "empty" if run.workers == 0 else f"{run.workers} worker(s)"
            print(f"  {run.mode:12}{what:>12}{run.seconds:8.1f} s{run.cpu:8.1f} s CPU", flush=True)

        def mode(target: Target) -> None:
            for _ in range(args.repeat):
                note(run_ingest(target, empty, 1, work))
                for w in args.workers:
                    note(run_ingest(target, corpus, w, work))

        ephemeral = Target("ephemeral", _env(work / "prefect-home", None))
        started = time.perf_counter()
        run_ingest(ephemeral, empty, 1, work)  # creates the new PREFECT_HOME's database
        first = time.perf_counter() - started
        print(f"  first run on a new PREFECT_HOME (not counted): {first:.1f} s", flush=True)
        for _ in range(args.repeat):
            note(run_ingest(ephemeral, empty, 1, work))
            # Parse only and ingest in turn, so that a change in the machine's load hits both.
            for w in args.workers:
                note(run_parse_only(corpus, w))
                note(run_ingest(ephemeral, corpus, w, work))

        if not args.no_server:
            with prefect_server(work) as server:
                if server:
                    api, group = server
                    mode(Target("server", _env(work / "prefect-client-home", api), group))
        if args.postgres:
            with postgres_cluster(work) as new_database:
                if new_database:
                    mode(Target("postgres", ephemeral.env, new_database=new_database))

        report(runs)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
