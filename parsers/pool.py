"""Parse many stored files in worker processes, each document within time and memory bounds.

No orchestration here: the ingest flow hands over work items and gets results back in batches.

Workers are new interpreters (spawned), not forks of the caller: they inherit none of its
database connections, threads or signal handlers (a forked worker held a copy of the loader's
socket and kept its transaction open after the loader was killed), and they see the caller's
environment as it is when the pool starts. Each worker also watches the process that started it
and exits when that one is gone, so a SIGKILL of the main process alone leaves no parser behind.
"""

from __future__ import annotations

import functools
import gc
import importlib
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol, TypeVar

from . import cores, ocr, process_alive
from .metadata import SourceHints
from .report import empty_result, parse_bytes
from .result import ParseResult, Problem

_Result = TypeVar("_Result")

# Most documents one worker call parses; batches shrink as the work runs out (see `batches`).
BATCH_SIZE = 16
# How often a worker checks that the process that started it is still alive.
_WATCH_INTERVAL = 0.5
# The longest the caller blocks at a time waiting for work. The kernel may hand a Ctrl-C
# (SIGINT) to any thread of the process; Python acts on it in the main thread, and only once
# that thread runs again: one blocked in a wait with no timeout never would.
SIGNAL_CHECK_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """Bounds on one document, so a pathological file is stopped and recorded, not the run."""

    seconds: float = 120.0
    # A scan's limit grows by this much for each page (or pasted picture) OCR reads: ~5 s a
    # page on a quiet core, with room for a machine shared by its workers.
    ocr_seconds_per_page: float = 20.0
    max_bytes: int = 200 * 1024 * 1024
    # Address-space cap of a parser process; None leaves it unbounded.
    memory_bytes: int | None = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkItem:
    sha256: str
    raw_key: str  # where the bytes are in the raw store (harvest/rawstore.py)
    source: str
    hints: SourceHints | None = None


class RawBytes(Protocol):
    """Where a worker reads a document's bytes: the raw store (harvest/rawstore.py), handed
    over by the caller so that parsing knows no storage."""

    def read(self, key: str) -> bytes: ...


# What a worker does with a batch: (items, limits, raw store) -> one result per item, in order;
# a module-level function (or a partial of one), so that it pickles.
BatchWork = Callable[[list[WorkItem], DocumentLimits, RawBytes], list]


class DocumentTimeout(BaseException):
    """Raised inside a worker when one document exceeds its time limit.

    A BaseException, so that the parser's own last-resort handler does not mistake it for a bug.
    """


def _on_alarm(_signum, _frame) -> None:
    raise DocumentTimeout


def _watch_owner(owner: int) -> None:
    while process_alive(owner):
        time.sleep(_WATCH_INTERVAL)
    os._exit(1)


def _start_worker(
    owner: int,
    memory_bytes: int | None,
    workers: int,
    imports: tuple[str, ...] = (),
    pin: bool = False,
) -> None:
    if pin:
        cores.pin_to_free_core()
    # A terminal's Ctrl-C reaches the whole process group: the owner decides, not the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The cores are shared among the workers: each gives OCR its share (unless set by hand).
    os.environ.setdefault(ocr.THREADS_VARIABLE, str(max(1, (os.cpu_count() or 1) // workers)))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _on_alarm)
    threading.Thread(target=_watch_owner, args=(owner,), daemon=True, name="owner-watch").start()
    # Paid once per worker process rather than once per document.
    from .sections import load_tokenizer

    load_tokenizer()
    for module in imports:
        importlib.import_module(module)
    # What the process holds from here on (modules, the tokenizer) is never garbage: the
    # collector's passes leave it out. A loader's were a fifth of its CPU (the tuples of a
    # batch's rows set off collections that walked SQLAlchemy's objects).
    gc.freeze()
    if memory_bytes:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def failed_result(item: WorkItem, data: bytes, problem: Problem) -> ParseResult:
    """The result of a document the parser could not be run on, with its problem."""
    return empty_result(item.source, data, "unknown", problem)


def parse_item(item: WorkItem, data: bytes, limits: DocumentLimits) -> ParseResult:
    """Parse one document's bytes within the limits; every outcome is a result, never an
    exception."""
    if len(data) > limits.max_bytes:
        too_large = f"{len(data)} bytes is over the {limits.max_bytes}-byte limit"
        return failed_result(item, data, Problem("too_large", too_large))
    started = time.monotonic()
    ocr_pages = 0

    def more_time(pages: int) -> None:
        # OCR is about to read `pages` pages: the limit grows by their share, from now on.
        nonlocal ocr_pages
        ocr_pages += pages
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left + pages * limits.ocr_seconds_per_page)

    ocr.budget_pages(more_time)
    signal.setitimer(signal.ITIMER_REAL, limits.seconds)
    try:
        result = parse_bytes(data, item.source, item.hints)
    except DocumentTimeout:
        result = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        ocr.budget_pages(None)
    allowed = limits.seconds + ocr_pages * limits.ocr_seconds_per_page
    # The alarm can fire inside a finalizer, where Python swallows it: the clock decides.
    if result is None or time.monotonic() - started > allowed:
        reason = f"{limits.seconds:g} s"
        if ocr_pages:
            reason += (
                f" + {limits.ocr_seconds_per_page:g} s for each of the {ocr_pages} page(s) "
                f"read by OCR = {allowed:g} s"
            )
        timeout = f"parsing took longer than {reason} and was stopped"
        return failed_result(item, data, Problem("parse_timeout", timeout))
    return result


def parse_batch(
    items: list[WorkItem], limits: DocumentLimits, store: RawBytes
) -> list[ParseResult]:
    """Runs in a worker process: plain data in, plain data out (pickled dataclasses)."""
    return [parse_item(item, store.read(item.raw_key), limits) for item in items]


def parse_then(
    items: list[WorkItem],
    limits: DocumentLimits,
    store: RawBytes,
    then: Callable[[list[WorkItem], list[ParseResult]], list],
    part: int,
    smallest_part: int = 1,
) -> list:
    """Runs in a worker process: parse a batch and hand its results to `then` there (a
    picklable callable: the warehouse's loader, so that a worker loads what it parsed).

    The batch goes to `then` in parts (`load_parts`), in a thread of this process, as each is
    parsed: the database works on one part (and the worker waits on the network) while the
    next part parses. All but the last: its parse results come back as they are, for the
    caller to hand over, so that the worker goes on to its next batch instead of waiting for
    a transaction with nothing left to parse. The results come back in order, once every
    handed part is done; an exception from `then` stops the parsing of the parts not yet begun.
    """
    handed: list[Future] = []
    results: list[ParseResult] = []
    start = 0
    for size in load_parts(len(items), part, smallest_part):
        for future in handed:
            if future.done():
                future.result()  # a part that failed stops the batch here
        batch = items[start : start + size]
        start += size
        results = parse_batch(batch, limits, store)
        if start < len(items):  # the last part goes back as it is
            handed.append(_then_thread().submit(then, batch, results))
    return [result for future in handed for result in future.result()] + results


def load_parts(count: int, part: int, smallest_part: int = 1) -> list[int]:
    """The sizes, in order, of the parts `parse_then` cuts a batch of `count` documents in: up
    to `part` each, the batch's last parts halving down to `smallest_part`.

    The last part goes back to the caller unloaded, and the worker waits only for the load of
    the one before it, which runs while the last parses: so the parts shrink towards the end,
    each at least half of the one before, which parses longer than that one loads as long as
    loading a document costs under half of parsing it; and the caller loads a small share.
    The parts before the halving ones are as few as `part` allows, of even sizes.
    """
    halving: list[int] = []
    size = max(1, smallest_part)
    while size < part and count > 0:
        halving.append(min(count, size))
        count -= halving[-1]
        size *= 2
    full = -(-count // part)
    return [count // full + (i < count % full) for i in range(full)] + halving[::-1]


@functools.cache
def _then_thread() -> ThreadPoolExecutor:
    """The one thread of this worker process that runs `parse_then`'s `then`: parts load in
    the order they were parsed, one transaction at a time."""
    return ThreadPoolExecutor(1, thread_name_prefix="then")


def result_when_done(future: Future[_Result]) -> _Result:
    """`future.result()`, waiting in steps of SIGNAL_CHECK_SECONDS, so that a Ctrl-C stops the
    wait whichever thread the kernel gave the signal to."""
    while not wait([future], timeout=SIGNAL_CHECK_SECONDS).done:
        pass
    return future.result()


def _crashed(item: WorkItem, store: RawBytes) -> ParseResult:
    return failed_result(item, store.read(item.raw_key), Problem.of("worker_crashed"))


def batches(
    items: list[WorkItem], workers: int, largest: int = BATCH_SIZE, smallest: int = 1
) -> list[list[WorkItem]]:
    """Batches that shrink as the work runs out (guided scheduling): few calls while much
    remains, and small ones at the end (down to `smallest` documents), so no worker idles
    while another finishes a long batch. One worker has none to wait for: its batches keep
    their size, since each call costs (a loading batch is transactions, and a last part that
    its caller loads)."""
    out: list[list[WorkItem]] = []
    start = 0
    while start < len(items):
        left = len(items) - start
        size = largest if workers == 1 else max(smallest, 1, min(largest, left // (workers * 2)))
        out.append(items[start : start + size])
        start += size
    return out


def parse_all(
    todo: list[WorkItem],
    workers: int,
    limits: DocumentLimits,
    on_batch: Callable[[list], None],
    store: RawBytes,
    work: BatchWork = parse_batch,
) -> None:
    """Parse every item in a pool of `workers` processes started for this call; see
    `ParserPool.run`."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    with ParserPool(workers, limits) as pool:
        pool.run(todo, store, on_batch, work)


class ParserPool:
    """Worker processes that parse batches, kept between `run` calls (a Dask worker keeps one
    for its chunks); a pool broken by a dying worker is replaced.

    `imports` are modules each worker imports as it starts, before its first batch: those of
    what the batches' work does besides parsing (the loader), paid once a worker. With
    `pin_cores`, each worker pins itself to a core no other pinned worker on the machine holds,
    if one is left (`cores.pin_to_free_core`).
    """

    def __init__(
        self,
        workers: int,
        limits: DocumentLimits,
        imports: tuple[str, ...] = (),
        pin_cores: bool = False,
    ) -> None:
        self.workers = workers
        self.limits = limits
        self.imports = imports
        self.pin_cores = pin_cores
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(wait=exc_info[0] is None)

    def close(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            if multiprocessing.current_process().daemon:
                raise RuntimeError(
                    "parser processes cannot start in a daemonic process: start Dask workers "
                    "with DASK_DISTRIBUTED__WORKER__DAEMON=False"
                )
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(
                    os.getpid(),
                    self.limits.memory_bytes,
                    self.workers,
                    self.imports,
                    self.pin_cores,
                ),
            )
        return self._executor

    def run(
        self,
        todo: list[WorkItem],
        store: RawBytes,
        on_batch: Callable[[list], None],
        work: BatchWork = parse_batch,
        batch_size: int | None = None,
        largest: int = BATCH_SIZE,
        smallest: int = 1,
    ) -> None:
        """Run `work` on every item, calling `on_batch` with its results as batches finish.

        Batches of up to `largest` items shrink as the work runs out, down to `smallest`
        (`batches`), or hold `batch_size` items each: a Dask chunk, sized by the flow already,
        is one batch, so its documents load together.

        At most two batches a worker are in flight, so a run holds a bounded number of results
        however many documents it has. A document whose worker died is retried alone, and
        recorded as `worker_crashed` when it kills its worker again. An exception from
        `on_batch` or from `work` stops the run: queued batches are cancelled and the exception
        propagates, without waiting for those in progress.
        """
        if batch_size is None:
            queue = batches(todo, self.workers, largest, smallest)
        else:
            queue = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        while queue:
            queue = self._round(queue, store, on_batch, work)

    def _round(
        self,
        queue: list[list[WorkItem]],
        store: RawBytes,
        on_batch: Callable[[list], None],
        work: BatchWork,
    ) -> list[list[WorkItem]]:
        """Run `queue` until done or the pool breaks; return the batches to retry, one document
        each, when a worker died (the pool is then replaced)."""
        retry: list[list[WorkItem]] = []
        waiting = iter(queue)
        pending: dict[Future, list[WorkItem]] = {}
        pool = self._pool()

        def submit_more() -> None:
            while len(pending) < 2 * self.workers and (batch := next(waiting, None)) is not None:
                try:
                    pending[pool.submit(work, batch, self.limits, store)] = batch
                except BrokenProcessPool:
                    retry.extend([item] for item in batch)
                    return

        try:
            submit_more()
            while pending:
                done, _ = wait(pending, timeout=SIGNAL_CHECK_SECONDS, return_when=FIRST_COMPLETED)
                finished = [(future, pending.pop(future)) for future in done]
                # The next batches go out before `on_batch` runs (the flow may load there), so
                # that a worker never waits for the caller with nothing queued.
                submit_more()
                for future, batch in finished:
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        if len(batch) == 1:
                            results = [_crashed(batch[0], store)]
                        else:
                            # Find the file that kills the process: retry one document a call.
                            retry.extend([item] for item in batch)
                            continue
                    on_batch(results)
        except BaseException:
            self.close(wait=False)
            raise
        # What a broken pool left unsubmitted.
        retry.extend([item] for batch in waiting for item in batch)
        if retry:
            self.close()
        return retry
