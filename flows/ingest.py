"""The ingest flow: discover files → keep raw bytes → parse in worker processes → load → R5.

Documents are not Prefect tasks: a ProcessPoolTaskRunner task costs about a second here, so
documents are parsed by the worker pool of `parsers.pool`, whose workers load jieba once, and
the flow run plans slices of files (a task run each) and loads the batches the pool hands back
(`load_batch`, calls in the flow run). With `--cluster` the flow maps a parse-and-load task over
chunks of documents on Dask instead (prefect-dask). Files are planned and parsed a slice at a
time, the next slice planned while one parses, with a bounded number of batches in flight, so
the flow's memory stays flat however many documents a run has.

On PostgreSQL each worker loads the batches it parsed (`schema.batchload`), in parts of up
to LOAD_BATCH documents, one transaction each, in a thread of the worker while the next part
parses, but for a batch's last, smallest part, which the flow's process loads, so that the
worker moves on to its next batch; on SQLite, which has one writer, the flow's process loads
every batch. While the
database is away a load is retried with backoff for a bounded time
(DatabaseSettings.retry_seconds), then the run stops with its summary; documents not loaded are
parsed again by the next run. Parsing is never retried: a parse is deterministic, and a failed
parse is a recorded outcome, not an error.

The run's state tells the truth: it ends Failed when a document failed (in this run, or in an
earlier one and unchanged since) or the run stopped early, with a message that says so, and
Completed otherwise; the CLI's exit status follows the same rule.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextvars import copy_context
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

import httpx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.flows import Flow
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Failed, State
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from nianbao.flows.orchestrator import configure_prefect, recorded_run
from nianbao.harvest.rawstore import RawStore, StoredDocument, resolve_raw_root
from nianbao.parsers import cores, ocr
from nianbao.parsers.pool import (
    BATCH_SIZE,
    DocumentLimits,
    ParserPool,
    WorkItem,
    batches,
    failed_result,
    parse_batch,
    parse_then,
    result_when_done,
)
from nianbao.parsers.report import PARSER_VERSION
from nianbao.parsers.result import ParseResult, Problem
from nianbao.schema.batchload import (
    Loaded,
    LoadTarget,
    engine_of,
    load_results,
    loads_in_workers,
)
from nianbao.schema.crossyear import evaluate_r5
from nianbao.schema.db import (
    DatabaseSettings,
    DatabaseUnavailable,
    complete_db_url,
    public_db_url,
    resolve_db_url,
    retry_while_unavailable,
    upgrade,
)
from nianbao.schema.load import RAW_MISSING, LoadOutcome, known_documents
from nianbao.schema.models import utcnow
from nianbao.schema.quality import gather, render_markdown
from nianbao.schema.runs import finish_run, reports_of_run, start_run

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner

# A run loading more reports than this prints counts only.
MAX_LISTED_REPORTS = 20
REPORT_OUTCOMES = (LoadOutcome.LOADED.value, LoadOutcome.RELOADED.value)
SKIP_SUFFIXES = (".json", ".py", ".db", ".db-journal", ".db-wal", ".db-shm", ".part")
# A folder's own documentation, not a report: Markdown is read (other tools' conversions of
# reports), but not these.
SKIP_DOCS = ("readme", "license", "changelog", "contributing")


@dataclass(slots=True)
class IngestSummary:
    seen: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    failed_files: list[tuple[str, str, str]] = field(default_factory=list)
    rules_failed: Counter = field(default_factory=Counter)
    # (agency, year, template, facts, failed rules) of the first reports this run loaded: a
    # summary lists them only up to MAX_LISTED_REPORTS.
    reports: list[tuple[str | None, int | None, str | None, int, int]] = field(default_factory=list)
    loaded: int = 0  # documents loaded or reloaded as reports by this run
    # Why the run stopped before its end (the database stayed away); None when it did not.
    stopped: str | None = None
    # Documents that were to be parsed and loaded but were not, because the run stopped.
    not_loaded: int = 0
    run_id: int | None = None  # its `runs` row: what it loaded is found by it

    @property
    def failed(self) -> int:
        # This run's failures and the unchanged files that failed in an earlier run.
        return len(self.failed_files)

    def failure_message(self) -> str | None:
        """What made the run fail, in one line; None when nothing did."""
        reasons = []
        if self.stopped:
            reasons.append(f"stopped early, {self.not_loaded} documents not loaded: {self.stopped}")
        if self.failed:
            by_code = ", ".join(f"{code} {n}" for code, n in self.failures.most_common())
            reasons.append(f"{self.failed} of {self.seen} documents failed ({by_code})")
        return "; ".join(reasons) or None

    def lines(self) -> list[str]:
        counts = ", ".join(
            f"{self.outcomes[o.value]} {o.value}"
            for o in LoadOutcome
            if self.outcomes[o.value] or o in (LoadOutcome.LOADED, LoadOutcome.UNCHANGED)
        )
        out = [f"documents seen: {self.seen}", f"  {counts}"]
        if self.stopped:
            out.append(
                f"STOPPED before the end, {self.not_loaded} documents not loaded: {self.stopped}"
            )
            out.append("  the next run loads them")
        if self.failures:
            by_code = ", ".join(f"{code} {n}" for code, n in self.failures.most_common())
            out.append(f"failed by reason: {by_code}")
            out += [f"  {code}: {path} — {message}" for path, code, message in self.failed_files]
        if self.rules_failed:
            rules = ", ".join(f"{rule} {n}" for rule, n in sorted(self.rules_failed.items()))
            out.append(f"rules failed in loaded reports: {rules}")
        if 0 < self.loaded <= MAX_LISTED_REPORTS:
            out.append("reports loaded:")
            out += [
                f"  {agency or '?'} {year or '?'} (template {template}): {facts} cells, "
                f"{failed} failed rules"
                for agency, year, template, facts, failed in sorted(self.reports, key=str)
            ]
        return out


def discover_files(paths: Iterable[str | Path]) -> list[str]:
    """Files under the given paths, recursively, in a stable order; gold files, code and the
    folder's own README/LICENSE skipped.

    Paths as strings: a Path object costs ~1.5 KB, which a run of 10,000 files would keep.
    """
    found: list[str] = []
    for path in map(os.path.normpath, map(str, paths)):
        if os.path.isdir(path):
            candidates = [
                os.path.join(folder, name)
                for folder, _, names in os.walk(path)
                for name in names
                if os.path.isfile(os.path.join(folder, name))
            ]
            candidates.sort(key=lambda candidate: candidate.split(os.sep))
        else:
            candidates = [path]
        found += [
            candidate
            for candidate in candidates
            if not (name := os.path.basename(candidate)).startswith(".")
            and not name.endswith(SKIP_SUFFIXES)
            and os.path.splitext(name)[0].lower() not in SKIP_DOCS
        ]
    return found


class Plan(NamedTuple):
    """What a slice of a run's files comes to before anything is parsed."""

    todo: list[WorkItem]  # to parse and load
    # Documents the warehouse holds settled with this parser version, or holds with an older
    # one while the raw store lost their bytes: their rows stay as they are.
    unchanged: int
    # (source, code, message) of those of them stored as failed, and of those whose bytes are
    # lost (raw_missing): a rerun still reports them.
    still_failed: list[tuple[str, str, str]]
    # Documents given by a key the raw store holds no bytes under, that the warehouse holds no
    # data of: recorded as raw_missing, not parsed.
    missing: list[WorkItem]


@task(name="plan", cache_policy=NO_CACHE)
def plan(documents: list[str | StoredDocument], db_url: str, raw_root: str) -> Plan:
    """Keep the bytes of every file (a document given by key is in the raw store already), and
    drop the documents the warehouse holds settled with this parser version (not those whose
    load failed or whose bytes were missing: `KnownDocument.settled`).

    A document given by key whose bytes the store does not hold is not parsed: it fails here,
    as `raw_missing`, rather than on a worker. Only a document the warehouse holds no data of
    (no row, or a failure tried again) is recorded so; one it holds loaded or failed on its bytes
    under an older parser version keeps its rows, and the failure is only reported.
    """
    store = RawStore(raw_root)
    stored = [
        document if isinstance(document, StoredDocument) else _keep(store, document)
        for document in documents
    ]
    known = retry_while_unavailable(
        lambda: known_documents(engine_of(db_url), {document.sha256 for document in stored}),
        DatabaseSettings.from_env().retry_seconds,
    )
    # A file given by path was just stored; a key is checked before a worker reads it.
    held_keys = store.held(
        document.key
        for document in stored
        if isinstance(document, StoredDocument)
        and not (document.sha256 in known and known[document.sha256].settled(PARSER_VERSION))
    )
    todo: dict[str, WorkItem] = {}
    missing: dict[str, WorkItem] = {}
    still_failed: dict[str, tuple[str, str, str]] = {}
    for document in stored:
        sha, held = document.sha256, known.get(document.sha256)
        if sha in todo or sha in missing or sha in still_failed:
            continue  # two copies of one file are one document: the first only
        if held is None or not held.settled(PARSER_VERSION):
            item = WorkItem(sha, document.key, document.source, document.hints)
            if not isinstance(document, StoredDocument) or document.key in held_keys:
                todo[sha] = item
            elif held is None or not held.holds_data:
                missing[sha] = item
            else:  # a failed row in its place would delete the reports and facts it holds
                message = _raw_missing_message(item, raw_root, kept=held.parser_version)
                still_failed[sha] = (document.source, RAW_MISSING, message)
        elif held.status == "failed":
            code, message = held.problem_code or "unknown", held.problem_message or ""
            still_failed.setdefault(sha, (document.source, code, message))
    unchanged = len(documents) - len(todo) - len(missing)
    return Plan(list(todo.values()), unchanged, list(still_failed.values()), list(missing.values()))


def plan_slices(files: int) -> Iterator[tuple[int, int]]:
    """The (start, stop) of the slices a run of `files` files is planned in: FIRST_PLAN_SLICE
    files, then twice as many each time up to PLAN_SLICE."""
    start, size = 0, FIRST_PLAN_SLICE
    while start < files:
        yield start, min(files, start + size)
        start, size = start + size, min(PLAN_SLICE, 2 * size)


def _raw_missing_message(item: WorkItem, raw_root: str, kept: str | None = None) -> str:
    """Why a document whose key holds no bytes is not parsed; `kept`: the parser version of the
    rows the warehouse keeps of it, if it keeps any."""
    outcome = f"the warehouse keeps its rows of parser {kept}" if kept else "not parsed"
    return (
        f"the raw store {raw_root} holds no bytes under {item.raw_key}: {outcome}; "
        "the next run over it tries again"
    )


def _raw_missing(item: WorkItem, raw_root: str) -> ParseResult:
    """The failed result of a document whose key holds no bytes: known by the sha256 its key
    names (the content address the harvest recorded), with 0 bytes, since none are held."""
    message = _raw_missing_message(item, raw_root)
    return ParseResult(
        item.source,
        item.sha256,
        "unknown",
        0,
        parser_version=PARSER_VERSION,
        problems=(Problem(RAW_MISSING, message),),
    )


def _keep(store: RawStore, path: str) -> StoredDocument:
    _, key = store.put_file(Path(path))
    return StoredDocument(key, path)


def load_batch(
    results: list[ParseResult | Loaded], raw_keys: dict[str, str], target: LoadTarget
) -> list[Loaded]:
    """Load each parsed document in this process; what comes back is small, so a long run's
    memory stays flat (a parse result with its facts is ~80 KB and is dropped once loaded).

    A call in the flow run, not a task run of its own: a task run cost ~13 ms of the flow's CPU
    and ~80 ms of the Prefect server's (measured, a long-lived server), once a batch of 16
    documents on SQLite, against a parse of ~25 ms a document; and the server would keep a
    task run for every 16 documents of a backfill. The flow's log says what each batch did.
    """
    logger = get_run_logger()

    def on_retry(reason: str, wait: float) -> None:
        logger.warning("database unavailable, retrying in %.0f s: %s", wait, reason)

    return load_results(results, raw_keys, target, on_retry)


# Files planned and parsed at a time: bounds what a run holds per document. The first slice
# is smaller, so that parsing starts soon; they grow to PLAN_SLICE.
FIRST_PLAN_SLICE = 250
PLAN_SLICE = 2000
# The fewest documents a batch's last part holds (`parse_then`'s parts), which the flow's
# process loads: a transaction is a dozen statements whatever its size.
SMALLEST_PART = 8
# Most documents a worker loads in one transaction: a dozen statements, whatever its size, and
# ~10 ms of the worker's CPU each.
LOAD_BATCH = 32
# A local worker's batch when it loads: parts of 32, 32, 32, 16 and 8 documents
# (`parse_then`'s parts): each loads in a thread of the worker while the next parses, but the
# last, which comes back to the flow's process to load there. A worker that loaded it would
# wait for it alone, with nothing left to parse, once a batch: a transaction's latency,
# 40–100 ms here whatever its size (measured, one worker: 0.5–0.7 ms a document at 120 a
# batch). A worker holds the parse results of the part it loads and of the one it parses,
# never a batch's; a worker's death retries its batch's documents one a call.
LOADING_BATCH = 3 * LOAD_BATCH + LOAD_BATCH // 2 + SMALLEST_PART
# Chunks of documents a Dask task parses (and loads), shrinking as the work runs out (`batches`)
# from DASK_CHUNK down to DASK_SMALLEST_CHUNK. Each is a Prefect task run, ~150 ms of CPU
# whatever its size (measured: ~90 ms in the Dask worker, where Prefect's engine builds its
# settings and two API clients for every task run, ~50 ms in the Prefect server recording its
# states, the rest the flow's submission and Dask's scheduling), against a ~12-ms parse a
# document: a chunk of 8 cost more than its documents' parse.
DASK_CHUNK = 4 * LOAD_BATCH
DASK_SMALLEST_CHUNK = LOAD_BATCH
_chunk_pools: dict[tuple[int, DocumentLimits, bool], ParserPool] = {}
# What a worker that loads imports as it starts: the loader (SQLAlchemy, the models) and its
# PostgreSQL driver, which SQLAlchemy would import at the first load.
LOADER_IMPORTS = ("nianbao.schema.batchload", "sqlalchemy.dialects.postgresql.psycopg")


def _chunk_pool(limits: DocumentLimits, load_here: bool) -> ParserPool:
    """The parser process of this Dask worker thread, started once and kept between chunks:
    a document's time and memory limits need a process of its own (SIGALRM, RLIMIT_AS), and a
    parser crash must not take the Dask worker with it."""
    key = (threading.get_ident(), limits, load_here)
    if key not in _chunk_pools:
        _chunk_pools[key] = ParserPool(1, limits, LOADER_IMPORTS if load_here else ())
    return _chunk_pools[key]


def _load_while_parsing(target: LoadTarget) -> Callable[..., list]:
    """A worker's work on a batch when it loads: parse it, and load it in parts (up to
    LOAD_BATCH documents, the last halving down to SMALLEST_PART: `load_parts`) in a thread of
    the worker as they are parsed, so that the database's work and the waits on it run beside
    the parse of the next part; the last part comes back unloaded, for the caller to load."""
    return partial(parse_then, then=target, part=LOAD_BATCH, smallest_part=SMALLEST_PART)


@task(name="parse-and-load", cache_policy=NO_CACHE)
def parse_chunk(
    items: list[WorkItem],
    limits: DocumentLimits,
    raw_root: str,
    target: LoadTarget,
    load_here: bool,
) -> list[ParseResult | Loaded]:
    """Runs on a Dask worker: parse a chunk of documents and, on PostgreSQL, load them there.

    With `load_here` the results are `Loaded` records (a few fields each); else the parse
    results, for the one writer (SQLite) in the flow's process.
    """
    results: list[ParseResult | Loaded] = []
    work = _load_while_parsing(target) if load_here else parse_batch
    # One batch of a transaction a part (a crash in it retries its documents one by one).
    _chunk_pool(limits, load_here).run(items, RawStore(raw_root), results.extend, work, len(items))
    if not load_here:
        return results
    # The chunk's last part comes back unloaded, and so does a document whose parser crashed,
    # as its failed result: they load here.
    return load_results(results, {item.sha256: item.raw_key for item in items}, target)


@task(name="cross-year-rules", cache_policy=NO_CACHE)
def cross_year(db_url: str, retry_seconds: float, run_id: int) -> int:
    """R5 for the reports this run loaded, and the next year's of their agencies: not the whole
    warehouse on every run. The reports are found by their run, wherever they were loaded."""

    def evaluate() -> int:
        engine = engine_of(db_url)
        report_ids = reports_of_run(engine, run_id)
        return evaluate_r5(engine, report_ids) if report_ids else 0

    return retry_while_unavailable(evaluate, retry_seconds)


# Dask's housekeeping that nianbao's runs do not use, slowed or off: the statistical profiler
# (every worker thread's stack every 10 ms, for the dashboard), the event-loop health check
# (every 20 ms in every process), the system and the nanny's memory monitors (0.5 s, 0.1 s).
# Measured idle, a scheduler with one worker and its nanny: 6.7 % of a core with Dask's
# defaults, 0.7 % with these; that CPU grows with the run's duration and the cluster's size, not
# with the documents. A real cluster's processes take them from the environment
# (`dask_environment`, docs/scale-out.md); `--cluster local` sets them itself.
DASK_SETTINGS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def dask_environment() -> dict[str, str]:
    """DASK_SETTINGS as the environment variables a `dask scheduler` or `dask worker` reads."""
    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in DASK_SETTINGS.items()
    }


def dask_task_runner(cluster: str, workers: int) -> DaskTaskRunner:
    """The task runner for `--cluster`: a scheduler's address (tcp://host:8786), or `local`
    for a Dask cluster of `workers` processes on this machine, started for the run."""
    # Imported here: Dask's import costs a run without a cluster a second.
    from prefect_dask import DaskTaskRunner

    if cluster == "local":
        return DaskTaskRunner(cluster_kwargs=local_cluster_options(workers))
    return DaskTaskRunner(address=cluster)


def local_cluster_options(workers: int) -> dict[str, object]:
    """The `distributed.LocalCluster` arguments of `--cluster local`: `workers` processes of one
    thread each. Sets the Dask configuration and environment those processes start with."""
    import dask

    # Non-daemonic workers: a chunk's parser runs in a child process of the Dask worker.
    dask.config.set({"distributed.worker.daemon": False, **DASK_SETTINGS})
    # Each worker's parser gives OCR its share of the cores (they inherit this).
    os.environ.setdefault(ocr.THREADS_VARIABLE, str(max(1, (os.cpu_count() or 1) // workers)))
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
    }


def ingest_flow_on(cluster: str | None, workers: int = 1) -> Flow:
    """The ingest flow, on a Dask cluster when `cluster` is given (see `dask_task_runner`)."""
    if cluster is None:
        return ingest_flow
    return ingest_flow.with_options(task_runner=dask_task_runner(cluster, workers))


@flow(name="nianbao-ingest", log_prints=False)
def ingest_flow(
    paths: list[str],
    db_url: str | None = None,
    workers: int = 1,
    raw_dir: str | None = None,
    limits: DocumentLimits | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cluster: str | None = None,
    stored: list[StoredDocument] | None = None,
) -> IngestSummary | State:
    """Ingest files or folders.

    `db_url` is the warehouse without its password (it is a flow parameter, shown by Prefect):
    the password comes from $NIANBAO_DB, PGPASSWORD or ~/.pgpass where the run executes; None
    means $NIANBAO_DB or the SQLite default. `raw_dir` is the raw store's root (a folder or an
    fsspec URL; None: $NIANBAO_RAW or ./raw). `stored` are documents already in that store,
    given by key with where they came from and what is known of them (a harvest's: it hands
    over no local path). With `cluster`, parsing and loading run on Dask: call the flow
    `ingest_flow_on(cluster)` gives.
    """
    configure_prefect()  # a run a Prefect worker starts has not been through the CLI
    with recorded_run():
        return _ingest(
            paths,
            db_url,
            workers,
            resolve_raw_root(raw_dir),
            limits,
            on_progress,
            cluster,
            stored or [],
        )


def _ingest(
    paths: list[str],
    db_url: str | None,
    workers: int,
    raw_root: str,
    limits: DocumentLimits | None,
    on_progress: Callable[[int, int], None] | None,
    cluster: str | None,
    stored: list[StoredDocument],
) -> IngestSummary | State:
    logger = get_run_logger()
    retry_seconds = DatabaseSettings.from_env().retry_seconds
    url = complete_db_url(resolve_db_url(db_url))
    upgrade(url)
    run_id = retry_while_unavailable(
        lambda: start_run(engine_of(url), "nianbao-ingest", flow_run.get_id()), retry_seconds
    )
    files: list[str | StoredDocument] = [*discover_files(paths), *stored]
    run = _IngestRun(
        url=url,
        raw_root=RawStore(raw_root).root,  # a local folder made absolute, for every worker
        files=files,
        # A cluster's workers complete the URL from their own environment: no password travels.
        target=LoadTarget(
            public_db_url(url) if cluster else url, run_id, retry_seconds, seen_at=utcnow()
        ),
        on_progress=on_progress,
        summary=IngestSummary(seen=len(files), run_id=run_id),
    )
    try:
        run.parse_and_load(workers, limits or DocumentLimits(), cluster)
        logger.info("R5 evaluated: %d rows", cross_year(url, retry_seconds, run_id))
    except DatabaseUnavailable as exc:
        run.summary.stopped = str(exc)
        run.summary.not_loaded = len(files) - run.done
        logger.error("run stopped: %s", exc)
    _publish(run.summary)
    if not run.summary.stopped:
        _close_run(engine_of(url), run_id, run.summary)
        # A harvest publishes one report at its end, not one per portal's ingest.
        if flow_run.get_parent_flow_run_id() is None:
            # The run's own reports: reading the whole warehouse would cost every run more.
            publish_quality_report(engine_of(url), run_id)
    engine_of(url).dispose()
    return final_state(run.summary)


@dataclass(slots=True)
class _IngestRun:
    """One ingest run's files, where they go and what has become of them so far."""

    url: str
    raw_root: str
    files: list[str | StoredDocument]  # paths, and documents in the raw store already
    target: LoadTarget
    on_progress: Callable[[int, int], None] | None
    summary: IngestSummary
    done: int = 0  # documents planned as unchanged, parsed or loaded
    raw_keys: dict[str, str] = field(default_factory=dict)  # of the slice being parsed

    def parse_and_load(self, workers: int, limits: DocumentLimits, cluster: str | None) -> None:
        """Plan, parse and load the files a slice at a time, so that what the run holds per
        document stays bounded however many files it is given.

        The next slice is planned (its files' bytes kept, the warehouse asked what it holds)
        in a thread while this one parses, and while the workers start. The first slice is
        small, so parsing begins early; the workers start only once it has something to parse
        (a nightly run over unchanged documents starts none).
        """
        load_here = loads_in_workers(self.url)
        work = _load_while_parsing(self.target) if load_here else parse_batch
        store = RawStore(self.raw_root)
        slices = plan_slices(len(self.files))

        def plan_next() -> Future[Plan] | None:
            if (bounds := next(slices, None)) is None:
                return None
            return _plan_in_background(self.files[slice(*bounds)], self.url, self.raw_root)

        imports = LOADER_IMPORTS if load_here else ()
        with ParserPool(workers, limits, imports, pin_cores=cores.pinning_on()) as pool:
            upcoming = plan_next()
            while upcoming is not None:
                planned, upcoming = result_when_done(upcoming), plan_next()
                todo = self.take_plan(planned)
                if todo and cluster:
                    _run_on_dask(todo, limits, self.raw_root, self.target, load_here, self.on_batch)
                elif todo:
                    # A worker that loads takes larger batches: it loads them in parts,
                    # each while the next parses. Nor are they cut below a last part's
                    # worth as a slice runs out: each batch costs a transaction and a task
                    # run more (its last part, which this process loads), which a few
                    # documents' parse does not repay (with 2 workers, a third of a slice's
                    # end's batches held 1).
                    pool.run(
                        todo,
                        store,
                        self.on_batch,
                        work,
                        largest=LOADING_BATCH if load_here else BATCH_SIZE,
                        smallest=SMALLEST_PART if load_here else 1,
                    )

    def take_plan(self, planned: Plan) -> list[WorkItem]:
        """Count a slice's plan in the summary and record the documents whose raw-store key
        holds no bytes as failed; what is to be parsed."""
        todo, unchanged, still_failed, missing = planned
        files = len(todo) + unchanged + len(missing)
        # This slice was planned while the last one parsed, before its documents were in the
        # warehouse: a copy of one of them is one document, as within a slice.
        if repeated := sum(item.sha256 in self.raw_keys for item in todo):
            todo = [item for item in todo if item.sha256 not in self.raw_keys]
            unchanged += repeated
        get_run_logger().info("%d files: %d to parse, %d unchanged", files, len(todo), unchanged)
        self.summary.outcomes[LoadOutcome.UNCHANGED.value] += unchanged
        for source, code, message in still_failed:
            self.summary.failures[code] += 1
            self.summary.failed_files.append((source, code, message))
        self._advance(unchanged)
        kept = sum(code == RAW_MISSING for _, code, _ in still_failed)
        if missing or kept:
            get_run_logger().error(
                "%d documents not in the raw store %s: %d recorded as %s,"
                " %d kept as the warehouse holds them",
                len(missing) + kept,
                self.raw_root,
                len(missing),
                RAW_MISSING,
                kept,
            )
        if missing:
            # Their rows keep the key the bytes were expected under: what to restore.
            self.on_batch(
                [_raw_missing(item, self.raw_root) for item in missing],
                raw_keys={item.sha256: item.raw_key for item in missing},
            )
        self.raw_keys = {item.sha256: item.raw_key for item in todo}
        return todo

    def on_batch(
        self, results: list[ParseResult | Loaded], raw_keys: dict[str, str] | None = None
    ) -> None:
        """Load what of a parsed batch its worker did not (all of it on SQLite, its last part
        on PostgreSQL), and count what became of it.
        `raw_keys`: the results' raw-store keys, when they are not of the slice being parsed."""
        if all(isinstance(result, Loaded) for result in results):
            loaded = results  # loaded by the workers
        else:
            keys = self.raw_keys if raw_keys is None else raw_keys
            loaded = load_batch(results, keys, self.target)
        for document in loaded:
            _record(self.summary, document)
        self._advance(len(results))
        get_run_logger().info(
            "batch of %d loaded (%s); %d/%d documents done",
            len(results),
            ", ".join(f"{n} {o}" for o, n in Counter(d.outcome for d in loaded).items()),
            self.done,
            len(self.files),
        )

    def _advance(self, documents: int) -> None:
        self.done += documents
        if self.on_progress:
            self.on_progress(self.done, len(self.files))


def _plan_in_background(
    files: list[str | StoredDocument], db_url: str, raw_root: str
) -> Future[Plan]:
    """`plan` of `files` in a daemon thread, in a copy of this context (so that it is a task
    run of this flow run). A run that stops does not wait for it: a plan waiting out a
    database that is away would hold a Ctrl-C or a cancellation for up to retry_seconds, and a
    ThreadPoolExecutor's threads are joined when the process exits."""
    future: Future[Plan] = Future()
    context = copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(plan, files, db_url, raw_root))
        except BaseException as exc:  # the caller's to handle, when it asks for the result
            future.set_exception(exc)

    threading.Thread(target=run, name="plan", daemon=True).start()
    return future


def _run_on_dask(
    todo: list[WorkItem],
    limits: DocumentLimits,
    raw_root: str,
    target: LoadTarget,
    load_here: bool,
    on_batch: Callable[[list[ParseResult | Loaded]], None],
) -> None:
    """Map `parse_chunk` over chunks of `todo` on the flow's Dask cluster, two chunks a worker
    thread in flight, so that the results held stay bounded however many documents there are.

    Dask runs a chunk again elsewhere when its worker dies (loading is idempotent); a chunk
    that keeps failing is split into single documents, and a document that still fails is
    recorded as `worker_crashed`. The task run of a chunk Dask gave up on is marked Crashed.
    """
    from distributed import KilledWorker, as_completed

    runner = FlowRunContext.get().task_runner
    if not hasattr(runner, "client"):
        raise ValueError("a run on a Dask cluster needs the flow of ingest_flow_on(cluster)")
    slots = max(1, sum(runner.client.nthreads().values()))
    chunks = iter(batches(todo, slots, DASK_CHUNK, DASK_SMALLEST_CHUNK))
    pending: dict[object, tuple[PrefectFuture, list[WorkItem]]] = {}

    def submit(chunk: list[WorkItem]) -> object:
        future = parse_chunk.submit(chunk, limits, raw_root, target, load_here)
        pending[future.wrapped_future] = (future, chunk)
        return future.wrapped_future

    finished = as_completed(
        [submit(chunk) for chunk in itertools.islice(chunks, 2 * slots)],
        loop=runner.client.loop,
    )
    # Task runs Dask gave up on that Prefect did not know yet: the state their worker sent
    # before it died may still be on its way to the server. Tried again at the end.
    unrecorded: list[tuple[UUID, KilledWorker]] = []
    for done in finished:
        future, chunk = pending.pop(done)
        try:
            results = future.result()
        except KilledWorker as exc:
            # Dask gave up on the chunk after its workers died on it (allowed-failures times).
            if not _mark_crashed(future.task_run_id, exc):
                unrecorded.append((future.task_run_id, exc))
            if len(chunk) > 1:
                get_run_logger().warning("chunk of %d failed (%s): split", len(chunk), exc)
                for item in chunk:
                    finished.add(submit([item]))
                continue
            item = chunk[0]
            data = RawStore(raw_root).read(item.raw_key)
            message = f"the Dask worker failed on this file: {type(exc).__name__}: {exc}"
            results = [failed_result(item, data, Problem("worker_crashed", message))]
        on_batch(results)
        if (chunk := next(chunks, None)) is not None:
            finished.add(submit(chunk))
    for task_run_id, exc in unrecorded:
        # Still unknown: its worker likely died before the task began, so nothing shows it
        # Running; said, in case its creation is only late and it shows Running for ever.
        if not _mark_crashed(task_run_id, exc):
            get_run_logger().warning(
                "task run %s of a chunk Dask gave up on is unknown to Prefect: not marked Crashed",
                task_run_id,
            )


def _mark_crashed(task_run_id: UUID, exc: BaseException) -> bool:
    """Propose Crashed for the task run of a chunk Dask gave up on; False when Prefect has no
    such task run (yet). Its worker died inside it, so the run never reported an end: Prefect
    would show it Running for ever. Not forced: Prefect's task policy accepts Running -> Crashed
    and refuses Crashed over a final state, in the same transaction, so a Completed state that
    arrives meanwhile (a worker can die after the task ended and before Dask heard of it) stays."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    message = f"its Dask worker died: {type(exc).__name__}: {exc}"
    try:
        with get_client(sync_client=True) as client:
            client.read_task_run(task_run_id)  # ObjectNotFound while its creation is on its way
            client.set_task_run_state(task_run_id, Crashed(message=message))
    except ObjectNotFound:
        return False
    except httpx.HTTPError as error:  # bookkeeping: the chunk's documents are still handled
        get_run_logger().warning("task run %s not marked Crashed: %s", task_run_id, error)
    return True


def _close_run(engine: Engine, run_id: int, summary: IngestSummary) -> None:
    counts = {"documents_seen": summary.seen, **summary.outcomes}
    finish_run(engine, run_id, counts, failed=summary.failure_message() is not None)


def publish_quality_report(engine: Engine, run_id: int | Sequence[int] | None = None) -> None:
    """The data-quality report's figures as the Markdown artifact `quality-report`: of the
    reports run `run_id` (or those runs: a harvest's) loaded, or of the whole warehouse.

    A database error here is logged, not raised: the run's data is loaded by then.
    """
    try:
        data = gather(engine, run_id)
        markdown = render_markdown(data)
    except DBAPIError as exc:
        get_run_logger().warning("quality report not published: %s", exc.__class__.__name__)
        return
    create_markdown_artifact(
        key="quality-report",
        markdown=markdown,
        description=f"Data quality of {data.scope}"
        " (`nianbao report` draws the warehouse's with charts)",
    )


def final_state(summary: IngestSummary) -> IngestSummary | State:
    """The summary, as a Failed state when a document failed or the run stopped early."""
    message = summary.failure_message()
    return Failed(message=message, data=summary) if message else summary


def _record(summary: IngestSummary, document: Loaded) -> None:
    summary.outcomes[document.outcome] += 1
    if document.outcome == LoadOutcome.FAILED.value:
        code = document.problem_code or "unknown"
        summary.failures[code] += 1
        summary.failed_files.append((document.source, code, document.problem_message or ""))
    if document.outcome in REPORT_OUTCOMES:
        summary.loaded += 1
        summary.rules_failed.update(document.failed_rules)
        if len(summary.reports) <= MAX_LISTED_REPORTS:
            summary.reports.append(
                (
                    document.agency,
                    document.year,
                    document.template,
                    document.facts,
                    len(document.failed_rules),
                )
            )


def _publish(summary: IngestSummary) -> None:
    create_table_artifact(
        key="ingest-counts",
        table=[
            {"what": k, "count": v} for k, v in [("seen", summary.seen), *summary.outcomes.items()]
        ],
        description="Documents seen and what happened to them",
    )
    create_table_artifact(
        key="ingest-failures",
        table=[{"source": s, "code": c, "message": m} for s, c, m in summary.failed_files]
        or [{"source": "", "code": "none", "message": "no document failed"}],
        description="Documents that failed, with their problem code",
    )
    create_table_artifact(
        key="ingest-rules-failed",
        table=[{"rule": r, "failed": n} for r, n in sorted(summary.rules_failed.items())]
        or [{"rule": "none", "failed": 0}],
        description="勾稽 rules that failed in the documents loaded by this run",
    )
