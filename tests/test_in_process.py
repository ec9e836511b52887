"""Dagster runs in this process leave its signal handlers as they were (orchestration.in_process)."""

from __future__ import annotations

import signal

import dagster as dg
import pytest

from orchestration.in_process import INTERRUPT_SIGNALS, execute_in_process


@dg.op
def nothing() -> None:
    pass


@dg.job
def one_step():
    nothing()


@pytest.fixture
def started_in_the_background():
    """SIGINT ignored, as in a process started with ``&`` or by cron; SIGTERM as by default."""
    saved = {number: signal.getsignal(number) for number in INTERRUPT_SIGNALS}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_dagster_alone_leaves_sigterm_ignored_where_sigint_is(started_in_the_background):
    """Why the helper exists: should a Dagster release stop doing this, it can go."""
    assert one_step.execute_in_process().success
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_a_run_through_the_helper_leaves_both_handlers_as_they_were(started_in_the_background):
    assert execute_in_process(one_step).success
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
