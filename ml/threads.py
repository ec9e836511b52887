"""How many threads one prediction may use: decided here only, from the number of rows.

Scoring one road user or a small batch gains nothing from threads: starting them costs more
than the work, and on a busy machine every OpenMP region waits for its slowest thread (one
row took 265 ms with threads against 25 ms without, measured under contention). Large
batches split their rows over the cores. Training and evaluation call the same function.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

#: Up to this many rows, one thread.
SINGLE_THREAD_MAX_ROWS = 4_096


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_for_rows(n_rows: int) -> int:
    """Threads for scoring ``n_rows`` rows: one for a small batch, every core for a large one."""
    return 1 if n_rows <= SINGLE_THREAD_MAX_ROWS else available_cores()


@contextmanager
def openmp_threads_for_rows(n_rows: int) -> Iterator[int]:
    """Limit OpenMP (scikit-learn's gradient boosting) in the calling thread to
    ``threads_for_rows(n_rows)`` threads. OpenMP's limit belongs to the calling thread, so
    this must wrap the call in the thread that makes it."""
    threads = threads_for_rows(n_rows)
    with _controller().limit(limits=threads, user_api="openmp"):
        yield threads


@cache
def _controller() -> ThreadpoolController:
    """Finding the loaded thread pools scans the process's libraries: once is enough."""
    return ThreadpoolController()
