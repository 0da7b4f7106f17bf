"""Load parsed batches where it scales: in the worker that parsed them, or in one writer.

On PostgreSQL each parser worker loads its own batches, one transaction per document, so loading
grows with the workers instead of capping the run in one process: `schema.load` keeps the
idempotency and `is_current` rules under concurrency (a row lock on the document, an advisory
lock per agency and year). SQLite has one writer: its workers only parse, and the process that
runs the flow loads.

What comes back from a worker is a `Loaded` per document: a few fields, so the flow's memory
stays flat however long the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from nianbao.parsers.result import ParseResult
from nianbao.schema.db import complete_db_url, engine_for, retry_while_unavailable
from nianbao.schema.load import LoadOutcome, load_document

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
    """Load the parse results among `results`, each document in its own transaction; those a
    worker loaded already (`Loaded`) pass through. A load is retried while the database is away,
    for `target.retry_seconds`, then DatabaseUnavailable."""
    engine = engine_of(target.db_url)
    loaded = []
    for result in results:
        if isinstance(result, Loaded):
            loaded.append(result)
            continue
        outcome = retry_while_unavailable(
            lambda result=result: load_document(
                engine, result, raw_keys.get(result.sha256), target.run_id
            ),
            target.retry_seconds,
            on_retry,
        )
        loaded.append(Loaded.of(result, outcome))
    return loaded
