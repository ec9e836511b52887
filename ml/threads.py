"""How many threads a prediction or a fit may use: decided here only, from the number of rows.

Scoring one road user or a small batch gains nothing from threads: starting them costs more
than the work, and on a busy machine every OpenMP region waits for its slowest thread (one
row took 265 ms with threads against 25 ms without, measured under contention). Large
batches split their rows over the cores. Evaluation calls the same function.

A gradient-boosting fit synchronises its threads at every split, so the bar is higher: with
one core busy elsewhere, 60 iterations on 3,000 rows took 3.3 s on one thread and 5.1 s on
two, on 30,000 rows 7.5 s and 8.9 s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

#: Up to this many rows, one thread.
SINGLE_THREAD_MAX_ROWS = 4_096
#: Up to this many training rows, a fit runs on one thread.
SINGLE_THREAD_MAX_TRAINING_ROWS = 50_000


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_for_rows(n_rows: int, single_thread_max_rows: int = SINGLE_THREAD_MAX_ROWS) -> int:
    """Threads for ``n_rows`` rows: one for a small batch, every core for a large one."""
    return 1 if n_rows <= single_thread_max_rows else available_cores()


@contextmanager
def openmp_threads_for_rows(n_rows: int, training: bool = False) -> Iterator[int]:
    """Limit OpenMP (scikit-learn's gradient boosting) in the calling thread to
    ``threads_for_rows(n_rows)`` threads (fits: to one thread up to
    ``SINGLE_THREAD_MAX_TRAINING_ROWS``). OpenMP's limit belongs to the calling thread, so
    this must wrap the call in the thread that makes it."""
    threads = threads_for_rows(
        n_rows, SINGLE_THREAD_MAX_TRAINING_ROWS if training else SINGLE_THREAD_MAX_ROWS
    )
    with openmp_threads(threads):
        yield threads


@contextmanager
def openmp_threads(threads: int) -> Iterator[int]:
    """Limit OpenMP in the calling thread to ``threads`` threads (e.g. 1 for tasks that
    already run side by side, one per core)."""
    with _controller().limit(limits=threads, user_api="openmp"):
        yield threads


@cache
def _controller() -> ThreadpoolController:
    """Finding the loaded thread pools scans the process's libraries: once is enough."""
    return ThreadpoolController()
