"""The ingest flow: discover files → keep raw bytes → parse in a process pool → load → R5 → summary.

The unit of Prefect work is a batch of documents, not a document: a ProcessPoolTaskRunner task
costs about a second here, so documents are parsed by a plain process pool whose workers load
jieba once, and Prefect orchestrates batches. Loading runs in the flow's process as batches
finish, one transaction per document, with retries for the database only (never for parsing:
a parse is deterministic, and a failed parse is a recorded outcome, not an error).
"""

from __future__ import annotations

import resource
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from nianbao.flows.settings import configure_prefect

configure_prefect()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from nianbao.flows.rawstore import DEFAULT_RAW_DIR, RawStore  # noqa: E402
from nianbao.parsers.metadata import SourceHints  # noqa: E402
from nianbao.parsers.report import PARSER_VERSION, empty_result, parse_bytes  # noqa: E402
from nianbao.schema.crossyear import evaluate_r5  # noqa: E402
from nianbao.schema.db import engine_for, upgrade  # noqa: E402
from nianbao.schema.load import LoadOutcome, known_documents, load_document  # noqa: E402

# Most documents a worker task parses. Each batch is one load task: ~3 ms in the flow and ~25 ms
# of the Prefect server's CPU, so batches are large while work remains (see `_batches`).
BATCH_SIZE = 16
# A run loading more reports than this prints counts only.
MAX_LISTED_REPORTS = 20
SKIP_SUFFIXES = (".json", ".py", ".md", ".db", ".db-journal", ".db-wal", ".db-shm", ".part")


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """Bounds on one document, so a pathological file is stopped and recorded, not the run."""

    seconds: float = 120.0
    max_bytes: int = 200 * 1024 * 1024
    # Address-space cap of a parser process; None leaves it unbounded.
    memory_bytes: int | None = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkItem:
    sha256: str
    raw_path: str
    source: str
    hints: SourceHints | None = None


@dataclass(slots=True)
class IngestSummary:
    seen: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    failed_files: list[tuple[str, str, str]] = field(default_factory=list)
    rules_failed: Counter = field(default_factory=Counter)
    # (agency, year, template, facts, failed rules) of each report this run loaded.
    reports: list[tuple[str | None, int | None, str | None, int, int]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        # This run's failures and the unchanged files that failed in an earlier run.
        return len(self.failed_files)

    def lines(self) -> list[str]:
        counts = ", ".join(
            f"{self.outcomes[o.value]} {o.value}"
            for o in LoadOutcome
            if self.outcomes[o.value] or o in (LoadOutcome.LOADED, LoadOutcome.UNCHANGED)
        )
        out = [f"documents seen: {self.seen}", f"  {counts}"]
        if self.failures:
            by_code = ", ".join(f"{code} {n}" for code, n in self.failures.most_common())
            out.append(f"failed by reason: {by_code}")
            out += [f"  {code}: {path} — {message}" for path, code, message in self.failed_files]
        if self.rules_failed:
            rules = ", ".join(f"{rule} {n}" for rule, n in sorted(self.rules_failed.items()))
            out.append(f"rules failed in loaded reports: {rules}")
        if 0 < len(self.reports) <= MAX_LISTED_REPORTS:
            out.append("reports loaded:")
            out += [
                f"  {agency or '?'} {year or '?'} (template {template}): {facts} cells, "
                f"{failed} failed rules"
                for agency, year, template, facts, failed in sorted(self.reports, key=str)
            ]
        return out


def discover_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files under the given paths, recursively, in a stable order; gold and code files skipped."""
    found: list[Path] = []
    for path in map(Path, paths):
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found += [
            p
            for p in candidates
            if not p.name.startswith(".") and not p.name.endswith(SKIP_SUFFIXES)
        ]
    return found


class DocumentTimeout(BaseException):
    """Raised inside a worker when one document exceeds its time limit.

    A BaseException, so that the parser's own last-resort handler does not mistake it for a bug.
    """


def _on_alarm(_signum, _frame) -> None:
    raise DocumentTimeout


def _start_worker(memory_bytes: int | None) -> None:
    # Paid once per worker process rather than once per document.
    from nianbao.parsers.sections import _tokenizer

    _tokenizer().initialize()
    signal.signal(signal.SIGALRM, _on_alarm)
    if memory_bytes:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def parse_item(item: WorkItem, limits: DocumentLimits) -> dict:
    """Parse one stored file within the limits; every outcome is a result, never an exception."""
    data = Path(item.raw_path).read_bytes()
    if len(data) > limits.max_bytes:
        return _failed(
            item, data, "too_large", f"{len(data)} bytes is over the {limits.max_bytes}-byte limit"
        )
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, limits.seconds)
    try:
        result = parse_bytes(data, item.source, item.hints)
    except DocumentTimeout:
        result = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    # The alarm can fire inside a finalizer, where Python swallows it: the clock decides.
    if result is None or time.monotonic() - started > limits.seconds:
        return _failed(
            item,
            data,
            "parse_timeout",
            f"parsing took longer than {limits.seconds:g} s and was stopped",
        )
    return result


def _failed(item: WorkItem, data: bytes, code: str, message: str) -> dict:
    result = empty_result(item.source, data, "unknown")
    result["problems"].append({"code": code, "message": message})
    return result


def parse_batch(items: list[WorkItem], limits: DocumentLimits) -> list[dict]:
    """Runs in a worker process: plain data in, plain data out."""
    return [parse_item(item, limits) for item in items]


def _crashed(item: WorkItem) -> dict:
    return _failed(
        item,
        Path(item.raw_path).read_bytes(),
        "worker_crashed",
        "the parser process died on this file (out of memory or a crash in a native library)",
    )


@cache
def _engine(db_url: str) -> Engine:
    return engine_for(db_url)


@task(name="plan", retries=2, retry_delay_seconds=2)
def plan(
    files: list[Path],
    db_url: str,
    raw_dir: str,
    sources: dict[str, str],
    hints: dict[str, SourceHints],
) -> tuple[list[WorkItem], int, list[tuple[str, str, str]]]:
    """Keep every file's bytes, and drop the files the warehouse holds with this parser version.

    Returns the work, the number of files skipped, and (source, code, message) of the skipped
    documents that are stored as failed: a rerun must still report them.
    """
    store = RawStore(raw_dir)
    stored = {path: store.put_file(path) for path in files}
    known = known_documents(_engine(db_url), {sha for sha, _ in stored.values()})
    todo: dict[str, WorkItem] = {}
    still_failed: dict[str, tuple[str, str, str]] = {}
    for path, (sha, raw_path) in stored.items():
        source = sources.get(str(path), str(path))
        held = known.get(sha)
        if held is None or held.parser_version != PARSER_VERSION:
            # Two copies of one file are one document: parse the first only.
            todo.setdefault(sha, WorkItem(sha, str(raw_path), source, hints.get(str(path))))
        elif held.status == "failed":
            code, message = held.problem_code or "unknown", held.problem_message or ""
            still_failed.setdefault(sha, (source, code, message))
    return list(todo.values()), len(files) - len(todo), list(still_failed.values())


# No cache policy: a load is a side effect, and the default policy would hash every result.
@task(name="load-batch", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def load_batch(
    results: list[dict], db_url: str, raw_paths: dict[str, str]
) -> list[tuple[dict, str]]:
    engine = _engine(db_url)
    return [
        (result, load_document(engine, result, raw_paths.get(result["sha256"])).value)
        for result in results
    ]


@task(name="cross-year-rules", retries=2, retry_delay_seconds=2)
def cross_year(db_url: str) -> int:
    return evaluate_r5(_engine(db_url))


def _batches(items: list[WorkItem], workers: int) -> list[list[WorkItem]]:
    """Batches that shrink as the work runs out (guided scheduling): few Prefect tasks while
    much remains, and single documents at the end, so no worker idles while another finishes a
    long batch."""
    batches: list[list[WorkItem]] = []
    start = 0
    while start < len(items):
        size = max(1, min(BATCH_SIZE, (len(items) - start) // (workers * 2)))
        batches.append(items[start : start + size])
        start += size
    return batches


def _parse_all(
    todo: list[WorkItem],
    workers: int,
    limits: DocumentLimits,
    on_batch: Callable[[list[dict]], None],
) -> None:
    """Parse every item, calling `on_batch` as batches finish; survive a worker that dies."""
    queue = _batches(todo, workers)
    while queue:
        retry: list[list[WorkItem]] = []
        with ProcessPoolExecutor(
            workers, initializer=_start_worker, initargs=(limits.memory_bytes,)
        ) as pool:
            pending: dict[Future, list[WorkItem]] = {
                pool.submit(parse_batch, b, limits): b for b in queue
            }
            for future in as_completed(pending):
                batch = pending[future]
                try:
                    results = future.result()
                except BrokenProcessPool:
                    if len(batch) == 1:
                        results = [_crashed(batch[0])]
                    else:
                        # Find the file that kills the process: retry one document a task.
                        retry += [[item] for item in batch]
                        continue
                on_batch(results)
        queue = retry


@flow(name="nianbao-ingest", log_prints=False)
def ingest_flow(
    paths: list[str],
    db_url: str,
    workers: int = 1,
    raw_dir: str = DEFAULT_RAW_DIR,
    sources: dict[str, str] | None = None,
    limits: DocumentLimits | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    hints: dict[str, SourceHints] | None = None,
) -> IngestSummary:
    """Ingest files or folders.

    `sources` maps a file path to where it came from (a URL), `hints` to what the harvest
    knows of it (the listing entry's title and publisher, the portal's region).
    """
    logger = get_run_logger()
    limits = limits or DocumentLimits()
    upgrade(db_url)
    files = discover_files(paths)
    summary = IngestSummary(seen=len(files))
    todo, unchanged, still_failed = plan(files, db_url, raw_dir, sources or {}, hints or {})
    summary.outcomes[LoadOutcome.UNCHANGED.value] += unchanged
    for source, code, message in still_failed:
        summary.failures[code] += 1
        summary.failed_files.append((source, code, message))
    progress = [unchanged]
    if on_progress:
        on_progress(unchanged, len(files))
    raw_paths = {item.sha256: item.raw_path for item in todo}

    def on_batch(results: list[dict]) -> None:
        # quote(): Prefect would otherwise walk every fact of every result looking for futures,
        # twice a call (~35 ms a document, five times the load itself).
        for result, outcome in load_batch(quote(results), db_url, quote(raw_paths)):
            _record(summary, result, outcome)
        progress[0] += len(results)
        if on_progress:
            on_progress(progress[0], len(files))

    if todo:
        _parse_all(todo, workers, limits, on_batch)
    logger.info("R5 evaluated: %d rows", cross_year(db_url))
    _publish(summary)
    _engine(db_url).dispose()
    return summary


def _record(summary: IngestSummary, result: dict, outcome: str) -> None:
    summary.outcomes[outcome] += 1
    if outcome == LoadOutcome.FAILED.value:
        problem = (
            result["problems"][0] if result["problems"] else {"code": "unknown", "message": ""}
        )
        summary.failures[problem["code"]] += 1
        summary.failed_files.append((result["source"], problem["code"], problem["message"]))
    if outcome in (LoadOutcome.LOADED.value, LoadOutcome.RELOADED.value):
        failed_rules = [check["rule"] for check in result["checks"] if not check["ok"]]
        summary.rules_failed.update(failed_rules)
        summary.reports.append(
            (
                result["agency"],
                result["year"],
                result["template"],
                len(result["facts"]),
                len(failed_rules),
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
