"""Which cores a parser process runs on: one core for its Python threads, every core the
process may use for OCR's thread pools.

A worker that loads what it parses (PostgreSQL) has two busy Python threads, the parse and the
loader, which hand the GIL to each other; left to the scheduler, they run on different cores,
beside the database and the flow, and each hand-over wakes a thread on another core. Measured
(1 local worker, PostgreSQL, a long-lived Prefect server, 1,200 documents, seven pairs of
runs in turn): every pinned run took less wall time than the unpinned one beside it (0.8–9.6 s
less, 4.3 s in the median pair), its parsing thread ran 2.2–5.2 s less CPU in six pairs of
seven, and it blocked 330–510 times a run against 1,400–2,200.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from . import switched_on

# Off (`--no-pin-workers`) where several runs share a machine: each would pin its first
# worker to the same core.
PIN_VARIABLE = "NIANBAO_PIN_WORKERS"

# Every core the process may use, once its threads are pinned to one; None while they are not.
_allowed: frozenset[int] | None = None


def pinning_on() -> bool:
    """Whether a run's local parser workers are pinned, one to a core (`NIANBAO_PIN_WORKERS`)."""
    return switched_on(PIN_VARIABLE)


def pin_to_core(index: int) -> int | None:
    """Hold the calling thread, and the threads it starts from now on, on the `index`-th core
    (counted round) of those the process may use; the core, or None where the system cannot
    or the process may use only one."""
    global _allowed
    if not hasattr(os, "sched_setaffinity"):  # not Linux
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    core = allowed[index % len(allowed)]
    try:
        os.sched_setaffinity(0, {core})
    except OSError:  # a cpuset changed under us: run where the scheduler puts us
        return None
    _allowed = frozenset(allowed)
    return core


@contextmanager
def every_core() -> Iterator[None]:
    """The calling thread on every core the process may use while inside, as are the threads
    it starts there: OCR's thread pools (onnxruntime, OpenCV) run as many threads as the
    worker's share of the cores, and start them at their first use."""
    if _allowed is None:
        yield
        return
    home = os.sched_getaffinity(0)
    os.sched_setaffinity(0, _allowed)
    try:
        yield
    finally:
        os.sched_setaffinity(0, home)
