"""Load parsed batches where it scales: in the worker that parsed them, or in one writer.

On PostgreSQL each parser worker loads its own batches, so loading grows with the workers instead of
capping the run in one process; SQLite has one writer: its workers only parse, and the process that
runs the flow loads. Either way a batch loads in one transaction (`schema.load.load_documents`,
which keeps the idempotency and `is_current` rules under concurrency); a worker hands it over in
parts, each loaded while the next parses, but the last, small one, which the worker returns for
its caller to load, so as not to wait for it (`parsers.pool.parse_then`). When the batch fails,
its documents load again one transaction each, so one document the warehouse refuses is
recorded as `load_failed` and the others load.

What comes back from a worker is a `Loaded` per document it loaded: a few fields, so the flow's
memory stays flat however long the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from nianbao.parsers.result import ParseResult, Problem
from nianbao.schema.db import (
    complete_db_url,
    describe_db_error,
    engine_for,
    is_outage,
    retry_while_unavailable,
)
from nianbao.schema.load import LOAD_FAILED, LoadOutcome, load_documents

if TYPE_CHECKING:  # the warehouse loads no reader: the pool's items are only named here
    from nianbao.parsers.pool import WorkItem


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


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """Where and for which run batches load.

    `db_url` may lack its password: each process completes it from its own environment
    ($NIANBAO_DB, PGPASSWORD, ~/.pgpass), so no password travels to a cluster's workers.
    """

    db_url: str
    run_id: int | None
    retry_seconds: float
    # When the run started: its new documents' first sighting (see `load_documents`).
    seen_at: datetime | None = None

    def __call__(self, items: list[WorkItem], results: list[ParseResult]) -> list[Loaded]:
        """Load a batch in the worker that parsed it (`parsers.pool.parse_then`'s `then`);
        a parse result is dropped as soon as its document is loaded."""
        return load_results(results, {item.sha256: item.raw_key for item in items}, self)


def loads_in_workers(db_url: str) -> bool:
    """Whether workers load their own batches: PostgreSQL yes, SQLite (one writer) no."""
    return make_url(db_url).get_backend_name() == "postgresql"


@cache
def engine_of(db_url: str) -> Engine:
    """One engine per database a process loads into, kept for the life of the process."""
    return engine_for(complete_db_url(db_url))


def load_results(
    results: list[ParseResult | Loaded],
    raw_keys: Mapping[str, str],
    target: LoadTarget,
    on_retry: Callable[[str, float], None] | None = None,
) -> list[Loaded]:
    """Load the parse results among `results` in one transaction; those a worker loaded
    already (`Loaded`) pass through, in their place.

    If the warehouse refuses the batch, each document loads in a transaction of its own, and
    one refused again is recorded as failed (`load_failed`, with the database's reason). A
    load is retried while the database is away, for `target.retry_seconds`, then
    DatabaseUnavailable.
    """
    parsed = [result for result in results if not isinstance(result, Loaded)]
    done = iter(_load(parsed, raw_keys, target, on_retry) if parsed else ())
    return [result if isinstance(result, Loaded) else next(done) for result in results]


def _load(
    parsed: list[ParseResult],
    raw_keys: Mapping[str, str],
    target: LoadTarget,
    on_retry: Callable[[str, float], None] | None,
) -> list[Loaded]:
    engine = engine_of(target.db_url)

    def load(batch: list[ParseResult]) -> list[LoadOutcome]:
        documents = [(result, raw_keys.get(result.sha256)) for result in batch]
        return retry_while_unavailable(
            lambda: load_documents(engine, documents, target.run_id, target.seen_at),
            target.retry_seconds,
            on_retry,
        )

    try:
        return list(map(Loaded.of, parsed, load(parsed)))
    except SQLAlchemyError as exc:
        if is_outage(exc):
            raise
    # The warehouse refused the batch: one transaction a document finds the one it refuses.
    loaded = []
    for result in parsed:
        try:
            outcome = load([result])[0]
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise
            result = refused(result, exc)
            try:
                outcome = load([result])[0]
            except SQLAlchemyError as again:
                if is_outage(again):
                    raise
                # Not even its failure can be stored (its source holds what the warehouse
                # refuses): the run's summary still names it, and the rest of the batch loads.
                outcome = LoadOutcome.FAILED
        loaded.append(Loaded.of(result, outcome))
    return loaded


def refused(result: ParseResult, exc: SQLAlchemyError) -> ParseResult:
    """`result` as a failed document: the warehouse refused its rows (`exc`)."""
    message = f"the warehouse refused this document's rows: {describe_db_error(exc)}"
    return replace(
        result,
        status="failed",
        sections=(),
        facts=(),
        checks=(),
        problems=(Problem(LOAD_FAILED, message.replace("\x00", "")),),
    )
