"""The CPU that loading a document costs on PostgreSQL: the loader's (client) and the server's.

Run from the repository root (about a minute on 2 cores with the defaults):

    .venv/bin/python bench/bench_load.py                        # this tree's loader
    .venv/bin/python bench/bench_load.py --baseline main        # ABBA against main's loader
    .venv/bin/python bench/bench_load.py --real                 # + tests/fixtures/real
    .venv/bin/python bench/bench_load.py --profile              # + cProfile and statements
    .venv/bin/python bench/bench_load.py --what-if "DROP INDEX …"   # a schema experiment

The samples are parsed once; the documents loaded are copies of their results with sha256s of
their own (as the bench corpus's copies, which parse to the same reports), in batches of
`--batch` (the parts a worker loads, `LOAD_BATCH`), through `schema.batchload.load_results`
as a worker calls it, into a new database of a throwaway cluster each pass. A pass measures:

- client: the loading thread's CPU (`time.thread_time`) a document;
- PostgreSQL: the CPU of the backend that served the loads (/proc/<pid>/stat), a document.

`--baseline REV` loads, every other pass, with the loader (`LOADER_MODULES`) as it is at git
revision REV (the rest of the tree, migrations included, as it is here), so both sides share
the machine's load; the sides take turns ABBA, the least of each side's passes is printed,
and the two sides' last databases are compared row by row (ids, times and runs aside).
`--what-if SQL` is one more side: this tree's loader into databases that SQL changed first.
`--profile` adds the client's hottest functions (cProfile, whose own cost inflates the client
figure) and the server's statements by total time (pg_stat_statements, nested ones included:
a foreign key's check runs as a statement of its own for every row it checks).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import hashlib
import importlib.util
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

# bench/: run as a script, its own folder is on sys.path.
from bench_ingest import postgres_cluster
from corpus import sample_files

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
REAL = ROOT / "tests" / "fixtures" / "real"


def parsed_samples(real: bool = False) -> list:
    """The samples' parse results; with `real`, also those of tests/fixtures/real's text
    reports (two dozen agencies, where the samples have three)."""
    from nianbao.parsers.report import parse_bytes

    paths = sample_files() + (sorted(REAL.glob("*.txt")) if real else [])
    return [parse_bytes(path.read_bytes(), path.name) for path in paths]


def copies(results: list, count: int) -> list:
    """`count` documents: the samples' results in turn, each with a sha256 of its own."""
    out = []
    for n in range(count):
        result = results[n % len(results)]
        sha = hashlib.sha256(f"{result.sha256} copy {n}".encode()).hexdigest()
        out.append(dataclasses.replace(result, sha256=sha, source=f"{n:04d}-{result.source}"))
    return out


# The loader's modules a baseline takes from its revision, each after those it imports.
LOADER_MODULES = ("schema/agencies.py", "schema/load.py")


def source_at(revision: str, path: str) -> str:
    """The text of the repository's file `path` as it is at `revision`."""
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def load_module_at(revision: str) -> ModuleType:
    """`nianbao.schema.load` as it is at `revision` (with the loader's modules it imports from
    there too, the rest from this tree), as modules of their own."""
    folder = Path(tempfile.mkdtemp())
    swapped: dict[str, ModuleType] = {}
    try:
        for path in LOADER_MODULES:
            source = source_at(revision, path)
            name = "nianbao." + path.removesuffix(".py").replace("/", ".")
            copy = folder / f"{name.replace('.', '_')}_baseline.py"
            copy.write_text(source)
            spec = importlib.util.spec_from_file_location(copy.stem, copy)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            # The next module's `from nianbao.schema.x import …` finds the baseline's.
            swapped.setdefault(name, importlib.import_module(name))
            sys.modules[name] = module
        return module
    finally:
        for name, module in swapped.items():
            sys.modules[name] = module


def backend_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def one_pass(
    db_url: str,
    documents: list,
    batch: int,
    load_documents: Callable,
    profile: bool,
    what_if: str | None = None,
) -> tuple[float, float, pstats.Stats | None]:
    """Client and server CPU (ms a document) of loading `documents` into `db_url`."""
    from sqlalchemy import text

    from nianbao.schema import batchload
    from nianbao.schema.batchload import LoadTarget, engine_of, load_results
    from nianbao.schema.db import upgrade

    upgrade(db_url)
    engine = engine_of(db_url)
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        print(f"  backend {pid}", flush=True)
        if what_if:
            connection.exec_driver_sql(what_if)
            connection.commit()
        if profile:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            connection.execute(text("SELECT pg_stat_statements_reset()"))
            connection.commit()
    target = LoadTarget(db_url, None, 0.0)
    raw_keys = {d.sha256: f"raw/{d.sha256}" for d in documents}
    parts = [documents[i : i + batch] for i in range(0, len(documents), batch)]
    # The first part warms the connection's caches (types, plans): not counted.
    batchload.load_documents = load_documents
    load_results(parts[0], raw_keys, target)
    # CPU time, not wall time: the waits for the server are the server's share.
    profiler = cProfile.Profile(time.thread_time) if profile else None
    client = 0.0
    server = backend_cpu(pid)
    for part in parts[1:]:
        started = time.thread_time()
        if profiler:
            profiler.enable()
        loaded = load_results(part, raw_keys, target)
        if profiler:
            profiler.disable()
        client += time.thread_time() - started
        assert all(d.outcome == "loaded" for d in loaded), loaded
    server = backend_cpu(pid) - server
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
    engine.dispose()
    counted = len(documents) - len(parts[0])
    stats = pstats.Stats(profiler) if profiler else None
    return client * 1000 / counted, server * 1000 / counted, stats


# Beside the tests' rows by content (tests/helpers.py: ids, times and runs aside): the agencies,
# their aliases and which report is current.
MORE_CONTENT = {
    "agencies": "SELECT key, canonical_name, kind, level, region_code, province, city, county"
    " FROM agencies",
    "agency_aliases": "SELECT a.key, n.name FROM agency_aliases n JOIN agencies a"
    " ON a.id = n.agency_id",
    "is_current": "SELECT document_sha256, is_current FROM reports",
}


def content(db_url: str) -> dict[str, list[tuple]]:
    """Every table's rows by content, sorted."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers import WAREHOUSE_CONTENT, rows

    queries = WAREHOUSE_CONTENT | MORE_CONTENT
    return {name: sorted(map(tuple, rows(db_url, sql)), key=repr) for name, sql in queries.items()}


def statements(db_url: str, top: int = 40) -> None:
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as conn:
        rows = conn.execute(
            "SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s",
            (top,),
        ).fetchall()
    print("  statements by total time (ms):")
    for calls, total, count, query in rows:
        print(f"  {total:9.1f} {calls:7d} calls {count:7d} rows  {query}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=352, help="documents a pass (default 352)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--passes", type=int, default=3, help="passes a side (default 3)")
    parser.add_argument("--baseline", metavar="REV", help="alternate with schema/load.py at REV")
    parser.add_argument(
        "--real", action="store_true", help="tests/fixtures/real's reports beside the samples"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--what-if",
        metavar="SQL",
        help="one more side: this tree's loader, with SQL run on each new database first"
        " (an experiment: e.g. a constraint dropped, to see what it costs)",
    )
    args = parser.parse_args()

    from nianbao.schema import load

    documents = copies(parsed_samples(args.real), args.docs)
    gc.freeze()  # as a worker that loads does once it has imported the loader (parsers/pool.py)
    rows = sum(len(d.sections) + len(d.facts) + len(d.checks) + len(d.problems) for d in documents)
    agencies = len({d.agency for d in documents})
    print(
        f"{len(documents)} documents, {rows / len(documents):.0f} rows a document,"
        f" {agencies} agencies",
        flush=True,
    )
    sides = {"this tree": (load.load_documents, None)}
    if args.baseline:
        baseline = load_module_at(args.baseline).load_documents
        sides = {f"baseline {args.baseline}": (baseline, None)} | sides
    if args.what_if:
        sides["what if"] = (load.load_documents, args.what_if)
    best: dict[str, tuple[float, float]] = {}
    last_db: dict[str, str] = {}
    started = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work, postgres_cluster(Path(work), preload) as new_db:
        if new_db is None:
            sys.exit("no PostgreSQL")
        for n in range(args.passes):
            # ABBA: a side that always ran second would gain from warm caches (or lose).
            in_turn = list(sides.items())
            for side, (load_documents, what_if) in in_turn[:: -1 if n % 2 else 1]:
                db_url = new_db()
                client, server, stats = one_pass(
                    db_url, documents, args.batch, load_documents, args.profile, what_if
                )
                # cProfile's own cost lands in the client's figure.
                who = "client (profiled)" if args.profile else "client"
                print(f"  pass {n + 1}, {side}: {who} {client:.2f}, PostgreSQL {server:.2f} ms")
                last_db[side] = db_url
                low = best.get(side, (client, server))
                best[side] = (min(low[0], client), min(low[1], server))
                if stats and n == args.passes - 1:
                    stats.sort_stats("cumulative").print_stats(45)
                    statements(db_url)
        if args.baseline:  # the same documents: the same rows, ids and times aside
            expected, got = (content(url) for url in last_db.values())
            differ = [name for name in expected if expected[name] != got[name]]
            rows = sum(map(len, got.values()))
            print(f"rows: {'differ in ' + ', '.join(differ) if differ else 'identical'} ({rows})")
    print(f"load average {started:.1f} → {os.getloadavg()[0]:.1f}; least of {args.passes}:")
    for side, (client, server) in best.items():
        print(f"  {side}: client {client:.2f} ms, PostgreSQL {server:.2f} ms a document")


preload = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"

if __name__ == "__main__":
    main()
