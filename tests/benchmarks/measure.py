"""Resident memory of a process tree, sampled in the background, and per-step peaks.

Peak RSS of a step = the highest total resident memory of this process and its children
(dbt runs as a child) sampled while the step ran. Read from /proc: Linux only.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Child processes of ``pid``; none once it has ended. A process can end while the tree
    is walked: its /proc folder then vanishes, which once killed the sampler's thread in the
    middle of a benchmark, and every later step reported no memory."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    children = []
    for task in tasks:
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return children


def tree_rss_bytes(pid: int) -> int:
    """RSS of ``pid`` and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_bytes(current)
        stack += _children(current)
    return total


class RssSampler:
    """Samples the process tree's RSS every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.05, pid: int | None = None):
        self.interval = interval
        self.pid = pid or os.getpid()
        self.samples: list[tuple[float, int]] = []  # (wall-clock time, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss_bytes(self.pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        inside = [rss for moment, rss in self.samples if start <= moment <= end]
        return max(inside, default=0)

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)
