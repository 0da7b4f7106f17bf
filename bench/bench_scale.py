"""Scale-out: throughput, the share outside parsing, flat memory and a backfill projection.

Run from the repository root (about 15–25 minutes on 2 cores with the defaults):

    .venv/bin/python bench/bench_scale.py                        # 300 docs; memory at 1k and 10k
    .venv/bin/python bench/bench_scale.py --docs 120 --memory 300 1000 --repeat 1   # quicker

In one invocation, into a temporary folder it deletes afterwards, with a throwaway PostgreSQL
cluster and a long-lived `prefect server` (as in production), it measures:

- parse only: the corpus through a bare process pool, 1 and 2 workers (the baseline);
- `nianbao ingest` into a new PostgreSQL database each run: over an empty folder (the fixed cost
  of a run), with 1 and 2 local workers (which load their own batches), and on a Dask cluster of
  a `dask scheduler` and 2 `dask worker` processes started here and kept between runs
  (`--cluster tcp://…`, with an empty run of its own for its fixed cost; small runs, not
  counted, warm every worker up first). Each of these and
  the parse only runs `--repeat` times in turn (default 3), and the least wall time and the least
  CPU of each are kept: on a shared machine, what others' load inflated least. Documents/s, and
  the share outside parsing (orchestration + loading) = 1 − parse only / (ingest − empty run),
  same number of workers, by wall time (issue 14's measure), by CPU and by CPU without
  PostgreSQL's, each checked against issue 14's aim of 10 %; and by wall time with the run's fixed
  cost, 1 − parse only / ingest;
- peak memory (VmHWM) of the flow's process and of its largest worker at each `--memory` size,
  2 local workers, PostgreSQL;
- a projection from the measured CPU per document (every process of the run: flow, workers,
  Prefect server, PostgreSQL) of a national year (100,000 reports) and of the 2008–2025 backfill
  (1.5 M) on 8 cores and on 4 machines of 8 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

# bench/'s own modules: run as a script (`python bench/bench_scale.py`), bench/ is on sys.path.
from bench_ingest import (
    BIN,
    RUN_TIMEOUT,
    _cpu,
    _env,
    _free_port,
    _group_cpu,
    _stop_group,
    postgres_cluster,
    prefect_server,
    run_parse_only,
)
from corpus import make_corpus

NATIONAL_YEAR = 100_000
BACKFILL = 1_500_000
CORES = 8
MACHINES = 4
# Issue 14: orchestration + loading at most this share of a run on PostgreSQL.
TARGET_OUTSIDE = 0.10


@dataclass
class Measured:
    what: str
    workers: int
    documents: int
    seconds: float
    cpu: float  # every process of the run: its own, the server's, the cluster's, PostgreSQL's
    flow_peak_mb: float = 0.0
    worker_peak_mb: float = 0.0
    database_cpu: float = 0.0  # PostgreSQL's share of `cpu`


# --- peak memory of a process tree ---------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Polls the VmHWM (peak resident set) of a process and of its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            tree, todo = _children(), [self.pid]
            while todo:
                pid = todo.pop()
                self.peaks[pid] = max(self.peaks.get(pid, 0), _peak_kb(pid))
                todo += tree.get(pid, [])
            self._stop.wait(0.25)

    def stop(self) -> tuple[float, float]:
        """(flow process, largest worker) peaks in MB."""
        self._stop.set()
        self._thread.join()
        workers = [kb for pid, kb in self.peaks.items() if pid != self.pid]
        return self.peaks.get(self.pid, 0) / 1024, max(workers, default=0) / 1024


# --- runs ----------------------------------------------------------------------------------------


def _groups_cpu(groups: list[int]) -> float:
    return sum(_group_cpu(group) for group in groups)


def run_ingest(
    env: dict[str, str],
    db_url: str,
    folder: Path,
    work: Path,
    workers: int,
    billed: list[int],
    cluster: str | None = None,
    what: str = "local",
    postmaster: int | None = None,
) -> Measured:
    """One `nianbao ingest` into `db_url`; CPU of the run's processes, of the `billed` process
    groups (the Prefect server, Dask's processes) and of PostgreSQL (`_postgres_cpu`)."""
    raw = work / f"raw-{time.monotonic_ns()}"
    cmd = [str(BIN / "nianbao"), "ingest", str(folder), "--db", db_url]
    cmd += ["--workers", str(workers), "--raw-dir", str(raw)]
    if cluster:
        cmd += ["--cluster", cluster]
    cpu = _cpu(resource.RUSAGE_CHILDREN) + _groups_cpu(billed)
    database_cpu = _postgres_cpu(postmaster)
    started = time.perf_counter()
    process = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work
    )
    memory = PeakMemory(process.pid)
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT * 4)
    finally:
        flow_peak, worker_peak = memory.stop()
    seconds = time.perf_counter() - started
    cpu = _cpu(resource.RUSAGE_CHILDREN) + _groups_cpu(billed) - cpu
    database_cpu = _postgres_cpu(postmaster) - database_cpu
    documents = sum(1 for p in folder.iterdir() if p.is_file())
    if process.returncode != 0 or f"{documents} loaded" not in out:
        sys.exit(f"{what} failed ({process.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    shutil.rmtree(raw, ignore_errors=True)
    return Measured(
        what, workers, documents, seconds, cpu + database_cpu, flow_peak, worker_peak, database_cpu
    )


@contextmanager
def dask_cluster(work: Path, env: dict[str, str], workers: int):
    """`dask scheduler` and `workers` × `dask worker --nthreads 1`, each in a process group of
    its own; yields (address, process groups)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    from nianbao.flows.ingest import dask_environment

    # Set up as docs/scale-out.md tells a team to: Dask's unused housekeeping slowed or off.
    env = {**env, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", **dask_environment()}
    log = (work / "dask.log").open("w")
    processes = [
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
            processes.append(
                subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--host"]
                    + ["127.0.0.1", "--no-dashboard"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, [p.pid for p in processes]
    finally:
        for process in reversed(processes):
            _stop_group(process)
        log.close()


# --- report --------------------------------------------------------------------------------------


def _hours(documents: int, cpu_per_document: float, cores: int) -> str:
    seconds = documents * cpu_per_document / cores
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def report(parse: dict[int, Measured], runs: list[Measured], memory: list[Measured]) -> None:
    empty = next(r for r in runs if r.what == "empty")
    # A Dask run's own fixed cost: the flow imports Dask and prefect-dask and connects to the
    # scheduler (0–0.6 s of CPU more than a local empty run in three probes), paid once a run.
    empty_dask = next((r for r in runs if r.what == "empty dask"), empty)
    print()
    print("PostgreSQL, long-lived Prefect server; outside parsing (orchestration + loading):")
    print("  whole = 1 − parse only / ingest, wall seconds, the run's fixed cost included;")
    print("  wall = 1 − parse only / (ingest − empty run): the share a document's run pays, what")
    print("  the share of a long run tends to; CPU = the same with CPU seconds; ms/doc: CPU a")
    print("  document outside parsing, and PostgreSQL's part of it; w/o db: the CPU share without")
    print("  PostgreSQL's processes (what the parsing machines spend)")
    print(
        f"{'run':12}{'workers':>8}{'docs':>6}{'wall s':>8}{'docs/s':>8}{'CPU s':>8}"
        f"{'whole':>7}{'wall out':>10}{'CPU out':>9}{'ms/doc':>8}{'of db':>7}{'w/o db':>8}"
    )
    print(f"{'empty run':12}{'':>8}{0:>6}{empty.seconds:>8.1f}{'':>8}{empty.cpu:>8.1f}")
    if empty_dask is not empty:
        print(
            f"{'  on Dask':12}{'':>8}{0:>6}{empty_dask.seconds:>8.1f}{'':>8}{empty_dask.cpu:>8.1f}"
        )
    for w, r in sorted(parse.items()):
        rate = r.documents / r.seconds
        print(f"{'parse only':12}{w:>8}{r.documents:>6}{r.seconds:>8.1f}{rate:>8.2f}{r.cpu:>8.1f}")
    shares: list[tuple[str, list[tuple[str, float | None]]]] = []
    for r in runs:
        if r.what.startswith("empty"):
            continue
        base = parse.get(r.workers)
        if base is None:
            continue
        fixed = empty_dask if r.what == "dask" else empty
        whole, wall, cpu, without_db = _outside(r, fixed, base)
        shares.append(
            (
                f"{r.what} {r.workers}",
                [("wall", wall), ("CPU", cpu), ("w/o db", without_db), ("whole run", whole)],
            )
        )
        per = (r.cpu - fixed.cpu - base.cpu) / r.documents * 1000
        db = (r.database_cpu - fixed.database_cpu) / r.documents * 1000
        print(
            f"{r.what:12}{r.workers:>8}{r.documents:>6}{r.seconds:>8.1f}"
            f"{r.documents / r.seconds:>8.2f}{r.cpu:>8.1f}{_percent(whole):>7}{_percent(wall):>10}"
            f"{_percent(cpu):>9}{per:>8.1f}{db:>7.1f}{_percent(without_db):>8}"
        )
    print()
    print(f"issue 14: orchestration + loading ≤ {TARGET_OUTSIDE:.0%} of wall time (`wall`)")
    for name, measures in shares:
        verdicts = [
            f"{kind} {_percent(share)} {'met' if share <= TARGET_OUTSIDE else 'NOT met'}"
            for kind, share in measures
            if share is not None
        ]
        print(f"  {name:9} {', '.join(verdicts)}")
    print("  (wall time counts the waits for a core other users' load decides; CPU does not;")
    print("  in production PostgreSQL has a host of its own: read `w/o db` for the workers' side)")
    by = {(r.what, r.workers): r for r in runs}
    if ("local", 1) in by and ("local", 2) in by:
        print(f"2 local workers vs 1: {by['local', 1].seconds / by['local', 2].seconds:.2f}x")
    if ("dask", 2) in by and ("local", 2) in by:
        print(f"2 Dask workers vs 2 local: {by['local', 2].seconds / by['dask', 2].seconds:.2f}x")

    if memory:
        print()
        print("peak memory (VmHWM), 2 local workers, PostgreSQL")
        print(f"{'documents':>10}{'wall s':>9}{'docs/s':>9}{'flow MB':>10}{'worker MB':>11}")
        for r in memory:
            print(
                f"{r.documents:>10}{r.seconds:>9.1f}{r.documents / r.seconds:>9.2f}"
                f"{r.flow_peak_mb:>10.0f}{r.worker_peak_mb:>11.0f}"
            )
        small, large = memory[0], memory[-1]
        if large.documents > small.documents:
            print(
                f"{large.documents} vs {small.documents} documents: flow "
                f"{large.flow_peak_mb / small.flow_peak_mb - 1:+.1%}, worker "
                f"{large.worker_peak_mb / small.worker_peak_mb - 1:+.1%}"
            )

    print()
    print("projection from the measured CPU per document (samples' mix of formats):")
    local2 = by.get(("local", 2))
    measured = [(f"parse only ({parse[1].documents} docs)", parse[1].cpu / parse[1].documents)]
    if local2:
        per = (local2.cpu - empty.cpu) / local2.documents
        measured.append((f"ingest, every process ({local2.documents} docs)", per))
    if len(memory) >= 2 and memory[-1].documents > memory[0].documents:
        # The marginal cost: fixed costs (start-up, workers' dictionaries) cancel out.
        small, large = memory[0], memory[-1]
        per = (large.cpu - small.cpu) / (large.documents - small.documents)
        measured.append((f"ingest, every process, {small.documents}→{large.documents} docs", per))
    for label, per_document in measured:
        print(f"  {label}: {per_document * 1000:.0f} ms CPU a document")
        for documents, name in ((NATIONAL_YEAR, "national year"), (BACKFILL, "2008–2025")):
            print(
                f"    {name} ({documents:,} reports): {_hours(documents, per_document, CORES)}"
                f" on {CORES} cores, {_hours(documents, per_document, CORES * MACHINES)} on "
                f"{MACHINES} × {CORES} cores"
            )
    print("  (ideal scaling of CPU over cores; the measured 2-vs-1 speed-ups above show the loss)")


def _outside(
    run: Measured, empty: Measured, parse: Measured
) -> tuple[float | None, float | None, float | None, float | None]:
    """The share of the run outside parsing: by wall time with the run's fixed cost, then with
    it removed by wall time, by CPU, and by CPU without PostgreSQL's."""
    net_wall, net_cpu = run.seconds - empty.seconds, run.cpu - empty.cpu
    net_without_db = net_cpu - (run.database_cpu - empty.database_cpu)
    return tuple(
        1 - part / whole if whole > 0 else None
        for part, whole in (
            (parse.seconds, run.seconds),
            (parse.seconds, net_wall),
            (parse.cpu, net_cpu),
            (parse.cpu, net_without_db),
        )
    )


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="documents in the speed corpus")
    parser.add_argument(
        "--memory", type=int, nargs="*", default=[1000, 10000], help="corpus sizes for memory"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each configuration but the memory ones; the least wall time and CPU are kept",
    )
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="nianbao-bench-scale-"))
    try:
        corpus, empty_folder = work / "corpus", work / "empty"
        mix = make_corpus(corpus, args.docs)
        empty_folder.mkdir()
        formats = ", ".join(f"{n} {f}" for f, n in sorted(mix.items()))
        print(f"corpus: {args.docs} documents ({formats}); {os.cpu_count()} CPUs")
        print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)

        memory: list[Measured] = []
        with (
            prefect_server(work) as server,
            postgres_cluster(work) as new_database,
        ):
            if not server or not new_database:
                sys.exit("needs a Prefect server and PostgreSQL")
            api, server_group = server
            env = _env(work / "prefect-client-home", api)
            postmaster = _postmaster(work)
            billed = [server_group]

            def note(run: Measured) -> Measured:
                print(
                    f"  {run.what:8}{run.workers:>3} worker(s){run.documents:>7} docs"
                    f"{run.seconds:8.1f} s{run.cpu:8.1f} s CPU  peak flow "
                    f"{run.flow_peak_mb:.0f} MB, local worker {run.worker_peak_mb:.0f} MB",
                    flush=True,
                )
                return run

            def ingest(
                folder: Path,
                w: int,
                what: str = "local",
                cluster: str | None = None,
                also_billed: tuple[int, ...] = (),
            ) -> Measured:
                return note(
                    run_ingest(
                        env,
                        new_database(),
                        folder,
                        work,
                        w,
                        [*billed, *also_billed],
                        cluster,
                        what,
                        postmaster,
                    )
                )

            # Not counted: a new server's first flow run costs it more than later ones (it
            # registers the flow), which would overstate the fixed cost every run pays.
            run_ingest(env, new_database(), empty_folder, work, 1, [], None, "warm-up")
            with dask_cluster(work, env, 2) as (address, groups):
                # Not counted: the workers' first chunks import nianbao and Prefect and start
                # their parser processes, once in a long-lived cluster's life. Until every
                # worker has had a chunk: Dask may give a small run's chunks to one of them.
                warm_up = work / "warm-up"
                make_corpus(warm_up, 16)
                for _ in range(5):
                    run_ingest(env, new_database(), warm_up, work, 2, [], address, "warm-up")
                    if _all_warm(address):
                        break
                # Each configuration `--repeat` times, in turn, so that all see the same
                # moments of other users' load; the least wall time and CPU of each are kept.
                best: dict[tuple[str, int], Measured] = {}
                for _ in range(args.repeat):
                    for w in (1, 2):
                        r = run_parse_only(corpus, w)
                        measured = Measured("parse only", w, r.documents, r.seconds, r.cpu)
                        print(f"  parse only {w} worker(s): {r.seconds:.1f} s", flush=True)
                        _keep_best(best, measured)
                    _keep_best(best, ingest(empty_folder, 1, what="empty"))
                    _keep_best(best, ingest(corpus, 1))
                    _keep_best(best, ingest(corpus, 2))
                    _keep_best(best, ingest(empty_folder, 2, "empty dask", address, tuple(groups)))
                    _keep_best(best, ingest(corpus, 2, "dask", address, tuple(groups)))
            parse = {w: r for (what, w), r in best.items() if what == "parse only"}
            runs = [r for (what, _), r in best.items() if what != "parse only"]
            for size in args.memory:
                folder = work / f"corpus-{size}"
                make_corpus(folder, size)
                memory.append(ingest(folder, 2, what=f"memory {size}"))
                shutil.rmtree(folder, ignore_errors=True)
        report(parse, runs, memory)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _all_warm(address: str) -> bool:
    """Whether every worker of the Dask cluster at `address` has its parser process."""
    from distributed import Client

    def has_parser() -> bool:
        from nianbao.flows import ingest

        return bool(ingest._chunk_pools)

    with Client(address, timeout=60) as client:
        return all(client.run(has_parser).values())


def _keep_best(best: dict[tuple[str, int], Measured], run: Measured) -> None:
    """Keep, of a configuration's runs, the least wall time and the least CPU (with its
    PostgreSQL part), each from the run least slowed by others: on a busy machine the run that
    waited least for a core is not always the one that spent least CPU."""
    key = (run.what, run.workers)
    kept = best.setdefault(key, run)
    fastest = run if run.seconds < kept.seconds else kept
    frugal = run if run.cpu < kept.cpu else kept
    best[key] = replace(fastest, cpu=frugal.cpu, database_cpu=frugal.database_cpu)


def _postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds used so far by PostgreSQL: its postmaster, the backends and helpers it
    started and still has, and those it reaped. Each of those processes leads a process group
    of its own (PostgreSQL makes them so), so the postmaster's group alone holds only the CPU
    of the backends that exited: those of connections still open at the end of a run (a Dask
    worker's parser keeps its pool's between runs) were not counted at all."""
    if postmaster is None:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == postmaster or int(fields[1]) == postmaster:
            ticks += sum(int(field) for field in fields[11:15])  # utime … cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _postmaster(work: Path) -> int | None:
    """The throwaway PostgreSQL server's postmaster, the one whose data is under `work`: other
    benches may run theirs beside this one."""
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = stat.read_bytes().split(b"\0")
        except OSError:
            continue
        if command[0].endswith(b"/postgres") and str(work).encode() in b" ".join(command):
            return int(stat.parent.name)
    return None


if __name__ == "__main__":
    main()
