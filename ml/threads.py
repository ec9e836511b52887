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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

T, R = TypeVar("T"), TypeVar("R")

#: Up to this many rows, one thread.
SINGLE_THREAD_MAX_ROWS = 4_096
#: Up to this many training rows, a fit runs on one thread.
SINGLE_THREAD_MAX_TRAINING_ROWS = 50_000
#: From this many rows, several fits (candidates, folds, feature sets) run side by side, one
#: per core, each on one OpenMP thread: a fit synchronises its threads at every split, two at
#: once keep both cores busy (two folds of 24,000 rows: 5.3 s against 8.6 s in a row). Below,
#: a fit is mostly Python overhead, which threads share badly (the sample's five folds of
#: about 3,300 rows: 5.7 s side by side, 4.2 s in a row).
SIDE_BY_SIDE_MIN_ROWS = 20_000


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


def fit_side_by_side(fit: Callable[[T], R], items: Sequence[T], n_rows: int) -> list[R]:
    """``fit(item)`` for each item, results in order: side by side from
    ``SIDE_BY_SIDE_MIN_ROWS`` rows, else in a row on the threads a lone fit of ``n_rows`` rows
    gets. Seeded fits give the same models either way (their histograms do not depend on
    the number of threads)."""
    workers = min(len(items), available_cores()) if n_rows >= SIDE_BY_SIDE_MIN_ROWS else 1
    if workers == 1:
        with openmp_threads_for_rows(n_rows, training=True):
            return [fit(item) for item in items]

    def on_one_thread(item: T) -> R:
        with openmp_threads(1):
            return fit(item)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fit") as pool:
        return list(pool.map(on_one_thread, items))


def predict_in_row_blocks(predict: Callable[[T], R], X, n_rows: int):
    """``predict(X)`` with X's rows in as many contiguous blocks as ``threads_for_rows``
    gives, each on a thread of its own with one OpenMP thread, concatenated in order. A
    scikit-learn estimator predicts each row alone, so the result is the same in any number
    of blocks (a forest's own ``n_jobs`` would add its trees in the order its threads
    finish, which changes the last digits from run to run); its trees release the GIL."""
    threads = threads_for_rows(n_rows)
    if threads == 1:
        with openmp_threads(1):
            return predict(X)
    bounds = np.linspace(0, n_rows, threads + 1).astype(int)
    rows = X.iloc if hasattr(X, "iloc") else X
    blocks = [rows[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]

    def on_one_thread(block):
        with openmp_threads(1):
            return predict(block)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="predict") as pool:
        return np.concatenate(list(pool.map(on_one_thread, blocks)))


@contextmanager
def beside(work: Callable[..., R], *args) -> Iterator[Future[R]]:
    """Run ``work(*args)`` on a thread of its own, on one OpenMP thread, while the caller's
    block runs; leaving the block waits for it. A lone fit on several OpenMP threads waits
    at every split (under the passive wait policy of ``ml/__init__.py``, a 60-iteration fit
    on 150,000 national rows took 13.6 s on two threads and 8.5 s on one, alone on a 2-core
    machine): on one thread beside other work, it keeps both cores busy instead."""

    def on_one_thread() -> R:
        with openmp_threads(1):
            return work(*args)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside") as pool:
        yield pool.submit(on_one_thread)


@cache
def _controller() -> ThreadpoolController:
    """Finding the loaded thread pools scans the process's libraries: once is enough."""
    return ThreadpoolController()
