"""The ingest flow: discover files → keep raw bytes → parse in worker processes → load → R5.

The unit of Prefect work is a batch of documents, not a document: a ProcessPoolTaskRunner task
costs about a second here, so documents are parsed by the worker pool of `parsers.pool`, whose
workers load jieba once, and Prefect orchestrates batches. Loading runs in the flow's process as
batches finish, one transaction per document. While the database is away a load is retried with
backoff for a bounded time (DatabaseSettings.retry_seconds), then the run stops with its summary;
documents not loaded are parsed again by the next run. Parsing is never retried: a parse is
deterministic, and a failed parse is a recorded outcome, not an error.

The run's state tells the truth: it ends Failed when a document failed (in this run, or in an
earlier one and unchanged since) or the run stopped early, with a message that says so, and
Completed otherwise; the CLI's exit status follows the same rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.utilities.annotations import quote
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from nianbao.flows.orchestrator import configure_prefect, recorded_run
from nianbao.harvest.rawstore import DEFAULT_RAW_DIR, RawStore
from nianbao.parsers.metadata import SourceHints
from nianbao.parsers.pool import DocumentLimits, WorkItem, parse_all
from nianbao.parsers.report import PARSER_VERSION
from nianbao.parsers.result import ParseResult
from nianbao.schema.crossyear import evaluate_r5
from nianbao.schema.db import (
    DatabaseSettings,
    DatabaseUnavailable,
    complete_db_url,
    engine_for,
    resolve_db_url,
    retry_while_unavailable,
    upgrade,
)
from nianbao.schema.load import (
    LoadOutcome,
    known_documents,
    load_document,
    report_ids_of,
)
from nianbao.schema.quality import gather, render_markdown
from nianbao.schema.runs import finish_run, start_run

# A run loading more reports than this prints counts only.
MAX_LISTED_REPORTS = 20
REPORT_OUTCOMES = (LoadOutcome.LOADED.value, LoadOutcome.RELOADED.value)
SKIP_SUFFIXES = (".json", ".py", ".db", ".db-journal", ".db-wal", ".db-shm", ".part")
# A folder's own documentation, not a report: Markdown is read (other tools' conversions of
# reports), but not these.
SKIP_DOCS = ("readme", "license", "changelog", "contributing")


class Loaded(NamedTuple):
    """What a run keeps of a document once it is loaded."""

    sha256: str
    source: str
    outcome: str
    problem_code: str | None
    problem_message: str | None
    agency: str | None
    year: int | None
    template: str | None
    facts: int
    failed_rules: tuple[str, ...]

    @classmethod
    def of(cls, result: ParseResult, outcome: LoadOutcome) -> Loaded:
        problem = result.problem
        return cls(
            result.sha256,
            result.source,
            outcome.value,
            problem.code if problem else None,
            problem.message if problem else None,
            result.agency,
            result.year,
            result.template,
            len(result.facts),
            result.failed_rules(),
        )


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


def discover_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files under the given paths, recursively, in a stable order; gold files, code and the
    folder's own README/LICENSE skipped."""
    found: list[Path] = []
    for path in map(Path, paths):
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found += [
            p
            for p in candidates
            if not p.name.startswith(".")
            and not p.name.endswith(SKIP_SUFFIXES)
            and p.stem.lower() not in SKIP_DOCS
        ]
    return found


@cache
def _engine(db_url: str) -> Engine:
    return engine_for(db_url)


@task(name="plan", cache_policy=NO_CACHE)
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
    known = retry_while_unavailable(
        lambda: known_documents(_engine(db_url), {sha for sha, _ in stored.values()}),
        DatabaseSettings.from_env().retry_seconds,
    )
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
# No Prefect retries: `retry_while_unavailable` retries for a bounded time, then stops the run.
@task(name="load-batch", cache_policy=NO_CACHE)
def load_batch(
    results: list[ParseResult],
    db_url: str,
    raw_paths: dict[str, str],
    retry_seconds: float,
    run_id: int | None = None,
) -> list[Loaded]:
    """Load each parsed document; what comes back is small, so a long run's memory stays flat
    (a parse result with its facts is ~80 KB and is dropped once loaded)."""
    engine = _engine(db_url)
    logger = get_run_logger()

    def on_retry(reason: str, wait: float) -> None:
        logger.warning("database unavailable, retrying in %.0f s: %s", wait, reason)

    loaded = []
    for result in results:
        # Retried one document at a time: each loads in its own transaction.
        outcome = retry_while_unavailable(
            lambda result=result: load_document(
                engine, result, raw_paths.get(result.sha256), run_id
            ),
            retry_seconds,
            on_retry,
        )
        loaded.append(Loaded.of(result, outcome))
    return loaded


@task(name="cross-year-rules", cache_policy=NO_CACHE)
def cross_year(db_url: str, retry_seconds: float, sha256s: list[str]) -> int:
    """R5 for the reports of the documents this run loaded, and the next year's of their
    agencies: not the whole warehouse on every run."""

    def evaluate() -> int:
        engine = _engine(db_url)
        return evaluate_r5(engine, report_ids_of(engine, sha256s)) if sha256s else 0

    return retry_while_unavailable(evaluate, retry_seconds)


@flow(name="nianbao-ingest", log_prints=False)
def ingest_flow(
    paths: list[str],
    db_url: str | None = None,
    workers: int = 1,
    raw_dir: str = DEFAULT_RAW_DIR,
    sources: dict[str, str] | None = None,
    limits: DocumentLimits | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    hints: dict[str, SourceHints] | None = None,
) -> IngestSummary | State:
    """Ingest files or folders.

    `db_url` is the warehouse without its password (it is a flow parameter, shown by Prefect):
    the password comes from $NIANBAO_DB, PGPASSWORD or ~/.pgpass where the run executes; None
    means $NIANBAO_DB or the SQLite default. `sources` maps a file path to where it came from
    (a URL), `hints` to what the harvest knows of it (listing entry, portal region).
    """
    configure_prefect()  # a run a Prefect worker starts has not been through the CLI
    with recorded_run():
        return _ingest(paths, db_url, workers, raw_dir, sources, limits, on_progress, hints)


def _ingest(
    paths: list[str],
    db_url: str | None,
    workers: int,
    raw_dir: str,
    sources: dict[str, str] | None,
    limits: DocumentLimits | None,
    on_progress: Callable[[int, int], None] | None,
    hints: dict[str, SourceHints] | None,
) -> IngestSummary | State:
    logger = get_run_logger()
    limits = limits or DocumentLimits()
    retry_seconds = DatabaseSettings.from_env().retry_seconds
    url = complete_db_url(resolve_db_url(db_url))
    upgrade(url)
    run_id = retry_while_unavailable(
        lambda: start_run(_engine(url), "nianbao-ingest", flow_run.get_id()), retry_seconds
    )
    files = discover_files(paths)
    summary = IngestSummary(seen=len(files))
    todo, unchanged, still_failed = plan(files, url, raw_dir, sources or {}, hints or {})
    logger.info("%d files: %d to parse, %d unchanged", len(files), len(todo), unchanged)
    summary.outcomes[LoadOutcome.UNCHANGED.value] += unchanged
    for source, code, message in still_failed:
        summary.failures[code] += 1
        summary.failed_files.append((source, code, message))
    progress = [unchanged]
    if on_progress:
        on_progress(unchanged, len(files))
    raw_paths = {item.sha256: item.raw_path for item in todo}
    touched: list[str] = []  # sha256 of the documents this run loaded as reports

    def on_batch(results: list[ParseResult]) -> None:
        # quote(): Prefect would otherwise walk every fact of every result looking for futures,
        # twice a call (~35 ms a document, five times the load itself).
        loaded = load_batch(quote(results), url, quote(raw_paths), retry_seconds, run_id)
        for document in loaded:
            _record(summary, document)
            if document.outcome in REPORT_OUTCOMES:
                touched.append(document.sha256)
        progress[0] += len(results)
        logger.info(
            "batch of %d loaded (%s); %d/%d documents done",
            len(results),
            ", ".join(f"{n} {o}" for o, n in Counter(d.outcome for d in loaded).items()),
            progress[0],
            len(files),
        )
        if on_progress:
            on_progress(progress[0], len(files))

    try:
        if todo:
            parse_all(todo, workers, limits, on_batch)
        logger.info("R5 evaluated: %d rows", cross_year(url, retry_seconds, touched))
    except DatabaseUnavailable as exc:
        summary.stopped = str(exc)
        summary.not_loaded = len(files) - progress[0]
        logger.error("run stopped: %s", exc)
    _publish(summary)
    if not summary.stopped:
        _close_run(_engine(url), run_id, summary)
        # A harvest publishes one report at its end, not one per portal's ingest.
        if flow_run.get_parent_flow_run_id() is None:
            publish_quality_report(_engine(url))
    _engine(url).dispose()
    return final_state(summary)


def _close_run(engine: Engine, run_id: int, summary: IngestSummary) -> None:
    counts = {"documents_seen": summary.seen, **summary.outcomes}
    finish_run(engine, run_id, counts, failed=summary.failure_message() is not None)


def publish_quality_report(engine: Engine) -> None:
    """The data-quality report's figures as the Markdown artifact `quality-report`.

    A database error here is logged, not raised: the run's data is loaded by then.
    """
    try:
        markdown = render_markdown(gather(engine))
    except DBAPIError as exc:
        get_run_logger().warning("quality report not published: %s", exc.__class__.__name__)
        return
    create_markdown_artifact(
        key="quality-report",
        markdown=markdown,
        description="Data quality of the warehouse (`nianbao report` draws it with charts)",
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
