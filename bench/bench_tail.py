"""The end of an ingest run on PostgreSQL: what each of its database pieces costs at several run
sizes, so that what grows with the run shows.

Run from the repository root (about 3 minutes on 2 cores with the defaults):

    .venv/bin/python bench/bench_tail.py                                # 300, 1,200, 5,000 documents
    .venv/bin/python bench/bench_tail.py --baseline 8bee1d6             # ABAB against a revision
    .venv/bin/python bench/bench_tail.py --sizes 300 1200 --passes 5

For each size: a new database of a throwaway cluster, that many copies of the samples' results
loaded in one run (as bench_load.py loads them: the copies parse to the samples' reports, so a
run of N documents holds N reports of which a handful are current), ANALYZEd (what autovacuum
does soon after a load). Then `--passes` times, what flows/ingest.py's `_ingest` does after the
last batch, without Prefect:

- R5 over the run's reports (`reports_of_run`, `evaluate_r5`: the `cross-year-rules` task);
- the run closed (`finish_run`);
- the quality report of the run's reports (`gather` + `render_markdown`).

Each piece: wall time, and CPU: this process's and all of PostgreSQL's processes' (a plan may
start parallel workers). The least of the passes is printed, and the growth from the smallest
to the largest size in µs a document. `--baseline REV`: every other pass with schema/quality.py
as it is at REV, on the views as REV's migrations left them (the warehouse is downgraded to
REV's last migration before and upgraded back after; not counted).

Prefect's part of the end (three table artifacts, the Markdown artifact, the flow run's
teardown) is not here: bench/README.md gives timeline probes of whole runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

# bench/: run as a script, its own folder is on sys.path.
from bench_ingest import postgres_cluster, proc_cpu
from bench_load import copies, parsed_samples, source_at

ROOT = Path(__file__).resolve().parents[1]
LOAD_BATCH = 32  # documents a load_results call, as a worker's part


def quality_at(revision: str) -> ModuleType:
    """`nianbao.schema.quality` as it is at `revision`, as a module of its own."""
    source = source_at(revision, "schema/quality.py")
    copy = Path(tempfile.mkdtemp()) / "quality_baseline.py"
    copy.write_text(source)
    spec = importlib.util.spec_from_file_location(copy.stem, copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def last_migration_at(revision: str) -> str:
    """The revision id of the last migration at git `revision` (files are named NNNN_…)."""
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, "schema/migrations/versions/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return max(Path(name).name.split("_")[0] for name in names if Path(name).name[0].isdigit())


def postgres_cpu(data: Path) -> float:
    """CPU seconds of the processes of the cluster whose data folder is `data`: the postmaster
    and its children (backends, parallel workers, autovacuum)."""
    postmasters = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(data) in cmdline.read_bytes().decode(errors="replace"):
                postmasters.add(int(cmdline.parent.name))
        except OSError:
            continue
    return proc_cpu(lambda pid, fields: pid in postmasters or int(fields[1]) in postmasters)


def load_run(db_url: str, documents: list) -> int:
    """Load `documents` in one run, as the workers of an ingest do; the run's id."""
    from sqlalchemy import text

    from nianbao.schema.batchload import LoadTarget, engine_of, load_results
    from nianbao.schema.db import upgrade
    from nianbao.schema.runs import start_run

    upgrade(db_url)
    engine = engine_of(db_url)
    run_id = start_run(engine, "bench-tail")
    target = LoadTarget(db_url, run_id, 0.0)
    raw_keys = {d.sha256: f"raw/{d.sha256}" for d in documents}
    for start in range(0, len(documents), LOAD_BATCH):
        loaded = load_results(documents[start : start + LOAD_BATCH], raw_keys, target)
        assert all(d.outcome == "loaded" for d in loaded), loaded
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return run_id


def the_end(db_url: str, run_id: int, quality: ModuleType) -> list[Callable[[], object]]:
    """The pieces of a run's end, as `_ingest` calls them, each a function to time."""
    from nianbao.schema.batchload import engine_of
    from nianbao.schema.crossyear import evaluate_r5
    from nianbao.schema.runs import finish_run, reports_of_run

    engine = engine_of(db_url)

    def r5() -> int:
        return evaluate_r5(engine, reports_of_run(engine, run_id))

    def close() -> None:
        finish_run(engine, run_id, {"documents_seen": 0}, failed=False)

    def report() -> str:
        return quality.render_markdown(quality.gather(engine, run_id))

    return [r5, close, report]


PIECES = ("R5", "close run", "quality report")


def measure(piece: Callable[[], object], data: Path) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process and PostgreSQL's, what it returned)."""
    cpu = time.process_time() + postgres_cpu(data)
    started = time.perf_counter()
    returned = piece()
    seconds = time.perf_counter() - started
    return seconds, time.process_time() + postgres_cpu(data) - cpu, returned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1200, 5000])
    parser.add_argument("--passes", type=int, default=3, help="passes a side (default 3)")
    parser.add_argument("--baseline", metavar="REV", help="alternate with quality.py at REV")
    args = parser.parse_args()

    from nianbao.schema import quality
    from nianbao.schema.batchload import engine_of
    from nianbao.schema.db import downgrade, upgrade

    sides = {"this tree": quality}
    baseline_migration = None
    if args.baseline:
        sides[args.baseline] = quality_at(args.baseline)
        baseline_migration = last_migration_at(args.baseline)
    results = parsed_samples()
    best: dict[tuple[str, int, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder, postgres_cluster(Path(folder)) as new_database:
        if new_database is None:
            sys.exit("no PostgreSQL here")
        data = Path(folder) / "pg" / "data"
        for size in args.sizes:
            db_url = new_database()
            started = time.perf_counter()
            run_id = load_run(db_url, copies(results, size))
            print(f"{size} documents loaded in {time.perf_counter() - started:.0f} s", flush=True)
            outputs: dict[str, str] = {}
            for _ in range(args.passes):
                for side, module in sides.items():
                    if side != "this tree":
                        downgrade(db_url, baseline_migration)
                    for name, piece in zip(PIECES, the_end(db_url, run_id, module), strict=True):
                        seconds, cpu, returned = measure(piece, data)
                        key = (side, size, name)
                        old = best.get(key, (float("inf"), float("inf")))
                        best[key] = (min(old[0], seconds), min(old[1], cpu))
                        if name == "quality report":
                            # The same report either way, but for the minute it was made at.
                            outputs[side] = str(returned).split("\n", 1)[1]
                    if side != "this tree":
                        upgrade(db_url)
                    engine_of(db_url).dispose()
            if len(set(outputs.values())) > 1:
                sys.exit(f"the sides' quality reports differ at {size} documents")
    report(best, sides, args.sizes)


def report(
    best: dict[tuple[str, int, str], tuple[float, float]], sides: dict, sizes: list[int]
) -> None:
    print()
    print("The end of a run on PostgreSQL: least wall / least CPU (this process + PostgreSQL's)")
    print("of the passes, ms; growth: from the smallest to the largest size, µs CPU a document")
    head = "".join(f"{f'{size} docs':>18}" for size in sizes)
    print(f"{'piece':16}{'side':>12}{head}{'growth':>10}")
    small, large = min(sizes), max(sizes)
    for name in (*PIECES, "all"):
        for side in sides:
            cells = []
            for size in sizes:
                keys = PIECES if name == "all" else (name,)
                wall = sum(best[side, size, key][0] for key in keys) * 1000
                cpu = sum(best[side, size, key][1] for key in keys) * 1000
                cells.append((wall, cpu))
            growth = (cells[sizes.index(large)][1] - cells[sizes.index(small)][1]) / (large - small)
            row = "".join(f"{f'{wall:.0f} / {cpu:.0f}':>18}" for wall, cpu in cells)
            print(f"{name:16}{side:>12}{row}{growth * 1000:>10.1f}")


if __name__ == "__main__":
    main()
