"""How the work of a run is cut into batches (local workers) and chunks (Dask tasks)."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nianbao.flows.ingest import (
    DASK_CHUNK,
    DASK_SMALLEST_CHUNK,
    LOAD_BATCH,
    LOADING_BATCH,
    SMALLEST_PART,
)
from nianbao.parsers import cores
from nianbao.parsers.pool import DocumentLimits, ParserPool, WorkItem, batches, load_parts


@pytest.fixture
def own_core_locks(tmp_path, monkeypatch):
    """Core locks of this test's own: pinned workers of runs beside the suite on the machine
    (an ingest, another test session) hold cores that the pinning tests expect free. The
    workers' temporary folder, where they take the locks, is TMPDIR, which they inherit."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again


def _items(n: int) -> list[WorkItem]:
    return [WorkItem(f"{i:064x}", f"00/{i:064x}.pdf", f"doc-{i}.pdf") for i in range(n)]


def test_batches_shrink_as_the_work_runs_out_down_to_single_documents():
    items = _items(120)
    sizes = [len(batch) for batch in batches(items, 2, 32)]
    assert sizes[0] == 30  # a quarter of what remains, two batches a worker in flight
    assert sizes[-4:] == [1, 1, 1, 1]
    assert [item for batch in batches(items, 2, 32) for item in batch] == items
    # One worker waits for no other: its batches keep their size.
    assert [len(batch) for batch in batches(items, 1, 32)] == [32, 32, 32, 24]


def test_dask_chunks_stop_shrinking_at_a_transaction_of_documents():
    # Each chunk is a Prefect task run (~150 ms of CPU): the run's tail is not cut below a
    # transaction's worth of documents, and a long run's chunks are four transactions' worth.
    items = _items(1000)
    chunks = batches(items, 2, DASK_CHUNK, DASK_SMALLEST_CHUNK)
    sizes = [len(chunk) for chunk in chunks]
    assert sizes[:4] == [4 * LOAD_BATCH] * 4
    assert sizes[-4:] == [32, 32, 32, 21] and min(sizes[:-1]) == LOAD_BATCH
    assert [item for chunk in chunks for item in chunk] == items
    # A run smaller than a chunk is one chunk.
    assert [len(chunk) for chunk in batches(_items(5), 2, DASK_CHUNK, DASK_SMALLEST_CHUNK)] == [5]


def test_loading_batches_stop_shrinking_at_a_last_parts_worth():
    # Each batch costs a transaction more, its last part's, which the flow loads: a slice's
    # end is not cut into batches of fewer documents than that part, but the remainder.
    items = _items(250)
    two = batches(items, 2, LOADING_BATCH, SMALLEST_PART)
    sizes = [len(batch) for batch in two]
    assert sizes[:3] == [62, 47, 35]
    assert min(sizes[:-1]) == SMALLEST_PART and sizes[-1] <= SMALLEST_PART
    assert [item for batch in two for item in batch] == items
    # One worker's batches keep their size.
    one = batches(items, 1, LOADING_BATCH, SMALLEST_PART)
    assert [len(batch) for batch in one] == [LOADING_BATCH, LOADING_BATCH, 10]


def test_a_batch_loads_in_parts_that_halve_towards_its_end():
    # The last part goes back to the flow to load; the worker waits for the load of the one
    # before it while it parses the last: each part is at least half of the one before.
    assert load_parts(LOADING_BATCH, LOAD_BATCH, SMALLEST_PART) == [32, 32, 32, 16, 8]
    assert load_parts(100, LOAD_BATCH, SMALLEST_PART) == [26, 25, 25, 16, 8]
    assert load_parts(11, LOAD_BATCH, SMALLEST_PART) == [3, 8]
    assert load_parts(5, LOAD_BATCH, SMALLEST_PART) == [5]
    assert load_parts(0, LOAD_BATCH, SMALLEST_PART) == []


def _started_at(items: list[WorkItem], _limits: DocumentLimits, _store: object) -> list[float]:
    """A worker's batch that tells when the worker began it."""
    return [time.time() for _ in items]


def test_a_worker_gets_its_next_batch_before_the_caller_handles_a_finished_one():
    # Regression: the next batches went out only after `on_batch` (where the flow loads)
    # returned, so a worker that had finished the one queued batch sat idle meanwhile.
    handled: list[tuple[float, float]] = []

    def on_batch(results: list[float]) -> None:
        begun = time.time()
        if not handled:
            time.sleep(2.0)  # the caller loading the first batch
        handled.append((results[0], begun))

    with ParserPool(1, DocumentLimits()) as pool:
        pool.run(_items(4), None, on_batch, _started_at, batch_size=1)
    # Batches finished together reach `on_batch` in no set order: by when they began.
    started = sorted(at for at, _ in handled)
    assert len(started) == 4
    # The second and third batches ran while the caller still handled the first one (no wait
    # for its 2 s).
    assert started[2] < handled[0][1] + 1.0


def _cores_seen(items: list[WorkItem], _limits: DocumentLimits, _store: object) -> list[tuple]:
    """Where a worker's batch ran: the worker, its cores, those of a thread it starts (as the
    loader's), and its cores while OCR runs."""
    with ThreadPoolExecutor(1) as thread:
        threads_cores = thread.submit(os.sched_getaffinity, 0).result()
    with cores.every_core():
        ocr_cores = os.sched_getaffinity(0)
    time.sleep(0.5)  # long enough for both workers to start and take batches
    return [(os.getpid(), os.sched_getaffinity(0), threads_cores, ocr_cores) for _ in items]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two cores")
def test_pinned_workers_each_run_on_a_core_of_their_own_but_ocr_on_every_core(own_core_locks):
    allowed = os.sched_getaffinity(0)
    seen: list[tuple] = []
    with ParserPool(2, DocumentLimits(), pin_cores=True) as pool:
        pool.run(_items(8), None, seen.extend, _cores_seen, batch_size=1)
    by_worker = {pid: rest for pid, *rest in seen}
    assert len(by_worker) == 2
    homes = [home for home, _, _ in by_worker.values()]
    assert all(len(home) == 1 and home <= allowed for home in homes)
    assert homes[0] != homes[1]
    # The loader's thread shares its worker's core; OCR's thread pools get them all.
    assert all(threads == home for home, threads, _ in by_worker.values())
    assert all(ocr == allowed for _, _, ocr in by_worker.values())


def test_workers_run_on_every_core_unless_pinned(monkeypatch):
    seen: list[tuple] = []
    with ParserPool(1, DocumentLimits()) as pool:
        pool.run(_items(1), None, seen.extend, _cores_seen, batch_size=1)
    assert seen[0][1] == os.sched_getaffinity(0)
    # A run pins its workers unless told not to (`--no-pin-workers`).
    monkeypatch.delenv(cores.PIN_VARIABLE, raising=False)
    assert cores.pinning_on()
    monkeypatch.setenv(cores.PIN_VARIABLE, "off")
    assert not cores.pinning_on()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two cores")
def test_a_worker_takes_a_core_no_other_pinned_process_holds_and_none_when_all_are_held(
    own_core_locks,
):
    allowed = sorted(os.sched_getaffinity(0))
    cores.locks_folder().mkdir(exist_ok=True)
    held = []

    def hold(taken: list[int]) -> None:
        # As another run's pinned workers do: a lock on each core's file, for their lifetime.
        for core in taken:
            held.append((cores.locks_folder() / f"{core}.lock").open("a"))
            fcntl.flock(held[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)

    def worker_cores() -> set[int]:
        seen: list[tuple] = []
        with ParserPool(1, DocumentLimits(), pin_cores=True) as pool:
            pool.run(_items(1), None, seen.extend, _cores_seen, batch_size=1)
        return seen[0][1]

    try:
        hold(allowed[:1])
        assert worker_cores() == {allowed[1]}
        hold(allowed[1:])
        assert worker_cores() == set(allowed)  # left to the scheduler
    finally:
        for handle in held:
            handle.close()
