"""Dagster jobs executed in this process, leaving its signal handlers as they were.

Leaving an in-process run, Dagster points SIGTERM at whatever handles SIGINT
(``dagster._utils.interrupts``, written for its own command-line processes). A process
started in the background (``make run &``, cron, a CI runner) ignores SIGINT, so from then on
it ignores SIGTERM too, and so does every process it starts (an ignored signal survives
``exec``): a supervisor can no longer stop it, and ``multiprocessing.Pool.terminate`` waits
forever for workers that ignore it (a ``make test`` hung so).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

#: The handlers Dagster's in-process execution may replace.
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signal_handlers_kept() -> Iterator[None]:
    """Restore SIGINT's and SIGTERM's handlers on leaving (only the main thread has any)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {number: signal.getsignal(number) for number in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for number, handler in saved.items():
            if handler is not None and signal.getsignal(number) is not handler:
                signal.signal(number, handler)


def execute_in_process(job: dg.JobDefinition, **kwargs) -> dg.ExecuteInProcessResult:
    """``job.execute_in_process(**kwargs)``, signal handlers kept."""
    with signal_handlers_kept():
        return job.execute_in_process(**kwargs)
