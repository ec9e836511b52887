"""The benchmark's memory sampler (tests/benchmarks/measure.py) on real processes."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.benchmarks.measure import RssSampler, _children, tree_memory, tree_rss_bytes

HOLD_200_MB = "import time; b = bytearray(200 << 20); time.sleep(3)"


def test_a_process_that_has_ended_has_no_children_and_no_memory():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: its /proc folder is gone
    assert _children(process.pid) == []
    assert tree_rss_bytes(process.pid) == 0


def test_the_sampler_outlives_children_that_end_while_it_walks_the_tree():
    """Sampling without pause while 300 children come and go: a child's /proc folder then
    vanishes between two reads, which killed the sampler's thread after about 40."""
    with RssSampler(interval=0) as sampler:
        for _ in range(300):
            subprocess.run(["true"], check=True)
        assert sampler._thread.is_alive()


def test_the_sampler_counts_a_childs_memory():
    with RssSampler(interval=0.01) as sampler:
        child = subprocess.Popen([sys.executable, "-c", HOLD_200_MB])
        time.sleep(1.5)
        _, with_child, anonymous_with_child = sampler.samples[-1]
        child.kill()
        child.wait()
    assert with_child - tree_rss_bytes(sampler.pid) > 200 << 20
    # The child's bytearray is heap, not a file's pages: it counts as anonymous memory.
    assert anonymous_with_child - tree_memory(sampler.pid)[1] > 200 << 20
    assert sampler.peak_anonymous >= anonymous_with_child and sampler.peak >= with_child
