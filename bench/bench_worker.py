"""Where a loading worker's time goes: 1 local worker, PostgreSQL, pinned to a core or not.

Run from the repository root (about 2 minutes a pass on 2 cores with the defaults):

    .venv/bin/python bench/bench_worker.py                  # 1,200 documents, 3 passes
    .venv/bin/python bench/bench_worker.py --docs 600 --passes 5

With a throwaway PostgreSQL cluster and a long-lived `prefect server`, each pass runs the
corpus through a bare process pool (parse only: the baseline), then `nianbao ingest` with its
worker pinned to a core (the default) and with `--no-pin-workers`, in turn (the order swaps
every pass). Over each run's documents phase (its `progress: 0/N` to `N/N` lines), from
/proc/<worker>/task/*/schedstat and status, read every 0.1 s, it prints the worker's parsing
thread (its main thread) split into running, waiting for a core and blocked, how often it
blocked (voluntary context switches), and the CPU of the worker's other threads (the loader).
Sides measured minutes apart see different machines: read the pairs of a pass, and the
medians.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench_ingest import BIN, _env, postgres_cluster, prefect_server, run_parse_only
from bench_scale import Progress, _children
from corpus import make_corpus

SIDES = {"pinned": [], "unpinned": ["--no-pin-workers"]}


@dataclass
class ThreadTimes:
    running: float  # seconds on a core
    waiting: float  # seconds runnable, waiting for a core
    switches: int  # voluntary context switches: times it blocked


def _worker_of(flow: int) -> int | None:
    """The flow's parser process: its spawned child that is not multiprocessing's tracker."""
    for pid in _children().get(flow, []):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            return pid
    return None


def _threads(pid: int) -> dict[int, ThreadTimes]:
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        running, waiting, _ = (int(n) for n in (task / "schedstat").read_text().split())
        status = (task / "status").read_text()
        switches = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        times[int(task.name)] = ThreadTimes(running / 1e9, waiting / 1e9, switches)
    return times


@dataclass
class WorkerRun:
    side: str
    wall: float
    documents_phase: float
    parsing: ThreadTimes  # the main thread's, over the documents phase
    blocked: float
    others: float  # CPU of the worker's other threads over the documents phase


def run_ingest(env: dict[str, str], db_url: str, folder: Path, work: Path, side: str) -> WorkerRun:
    raw = work / f"raw-{time.monotonic_ns()}"
    cmd = [str(BIN / "nianbao"), "ingest", str(folder), "--db", db_url, "--workers", "1"]
    cmd += ["--raw-dir", str(raw), *SIDES[side]]
    started = time.perf_counter()
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=work
    )
    progress = Progress(process, started)
    samples: list[tuple[float, dict[int, ThreadTimes]]] = []
    done = threading.Event()

    def sample() -> None:
        worker = None
        while not done.wait(0.1):
            worker = worker or _worker_of(process.pid)
            if worker:
                with contextlib.suppress(OSError):  # the worker is gone: the run is ending
                    samples.append((time.perf_counter() - started, _threads(worker)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    process.wait()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    err, _, all_done = progress.stop()
    if process.returncode != 0 or all_done is None or progress.opened is None or not samples:
        sys.exit(f"ingest ({side}) failed ({process.returncode}):\n{err[-2000:]}")
    shutil.rmtree(raw, ignore_errors=True)
    opened = progress.opened
    before = max((s for s in samples if s[0] <= opened), key=lambda s: s[0], default=samples[0])
    after = max((s for s in samples if s[0] <= all_done), key=lambda s: s[0])
    main = min(after[1])  # the main thread's id is the process id, the least
    nothing = ThreadTimes(0.0, 0.0, 0)
    start, end = before[1].get(main, nothing), after[1][main]
    parsing = ThreadTimes(
        end.running - start.running, end.waiting - start.waiting, end.switches - start.switches
    )
    others = sum(
        times.running - before[1].get(tid, nothing).running
        for tid, times in after[1].items()
        if tid != main
    )
    blocked = after[0] - before[0] - parsing.running - parsing.waiting
    return WorkerRun(side, wall, all_done - opened, parsing, blocked, others)


def _line(label: str, run: WorkerRun, parse_only: float) -> str:
    over = run.documents_phase / parse_only - 1
    return (
        f"  {label:<10}{run.wall:8.1f}{run.documents_phase:9.1f}{over:>9.1%}"
        f"{run.parsing.running:9.1f}{run.parsing.waiting:8.1f}{run.blocked:9.1f}"
        f"{run.parsing.switches:>10}{run.others:8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1200, help="documents a run (default 1,200)")
    parser.add_argument("--passes", type=int, default=3, help="passes (default 3)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="nianbao-bench-worker-") as tmp:
        work = Path(tmp)
        folder = work / "corpus"
        mix = make_corpus(folder, args.docs)
        print(
            f"corpus: {args.docs} documents ({', '.join(f'{n} {f}' for f, n in sorted(mix.items()))})"
        )
        print(f"{os.cpu_count()} CPUs, load average at start: {os.getloadavg()[0]:.2f}", flush=True)
        with prefect_server(work) as server, postgres_cluster(work) as new_database:
            if not server or not new_database:
                sys.exit("needs a Prefect server and PostgreSQL")
            env = _env(work / "prefect-client-home", server[0])
            run_ingest(env, new_database(), folder, work, "pinned")  # not counted: warm-up
            print(
                "seconds: wall, documents phase (and its excess over parse only), the parsing"
                " thread\nrunning, waiting for a core and blocked in it; times it blocked; the"
                " worker's other threads' CPU"
            )
            print(
                f"  {'run':<10}{'wall':>8}{'docs':>9}{'excess':>9}{'running':>9}{'waiting':>8}"
                f"{'blocked':>9}{'blocked #':>10}{'others':>8}"
            )
            runs: dict[str, list[WorkerRun]] = {side: [] for side in SIDES}
            parse_only: list[float] = []
            for number in range(args.passes):
                parse_only.append(run_parse_only(folder, 1).seconds)
                print(f"pass {number}: parse only {parse_only[-1]:.1f} s", flush=True)
                order = list(SIDES) if number % 2 == 0 else list(SIDES)[::-1]
                for side in order:
                    runs[side].append(run_ingest(env, new_database(), folder, work, side))
                    print(_line(side, runs[side][-1], parse_only[-1]), flush=True)
            print(
                f"medians ({args.passes} passes; parse only {statistics.median(parse_only):.1f} s):"
            )
            for side, measured in runs.items():
                median = WorkerRun(
                    side,
                    statistics.median(r.wall for r in measured),
                    statistics.median(r.documents_phase for r in measured),
                    ThreadTimes(
                        statistics.median(r.parsing.running for r in measured),
                        statistics.median(r.parsing.waiting for r in measured),
                        int(statistics.median(r.parsing.switches for r in measured)),
                    ),
                    statistics.median(r.blocked for r in measured),
                    statistics.median(r.others for r in measured),
                )
                print(_line(side, median, statistics.median(parse_only)))
            faster = sum(
                p.wall < u.wall for p, u in zip(runs["pinned"], runs["unpinned"], strict=True)
            )
            print(f"pinned took less wall time in {faster} of {args.passes} passes")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
