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
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_ingest import BIN, _env, postgres_cluster, prefect_server, run_parse_only
from bench_scale import NO_TIME, ProcessWatch, Progress, ThreadTimes
from corpus import make_corpus

SIDES = {"pinned": [], "unpinned": ["--no-pin-workers"]}


@dataclass
class WorkerRun:
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
    watch = ProcessWatch(process.pid, started, interval=0.1)
    process.wait()
    wall = time.perf_counter() - started
    watch.stop()
    err, _, all_done = progress.stop()
    span = None
    if process.returncode == 0 and all_done is not None and progress.opened is not None:
        span = watch.between(progress.opened, all_done)
    if span is None:
        sys.exit(f"ingest ({side}) failed ({process.returncode}):\n{err[-2000:]}")
    shutil.rmtree(raw, ignore_errors=True)
    seconds, workers = span
    ((worker, threads),) = workers.items()  # one worker
    parsing = threads.get(worker, NO_TIME)
    others = sum(times.running for thread, times in threads.items() if thread != worker)
    blocked = seconds - parsing.running - parsing.waiting
    return WorkerRun(wall, all_done - progress.opened, parsing, blocked, others)


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
