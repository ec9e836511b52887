"""Resident memory of a process tree, sampled in the background, and per-step peaks.

Peak RSS of a step = the highest total resident memory of this process and its children
(dbt runs as a child) sampled while the step ran. Read from /proc: Linux only.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _rss_bytes(pid: int) -> tuple[int, int]:
    """``(resident, anonymous)`` bytes of ``pid``: VmRSS, and RssAnon, the part that is not
    a file's pages (mapped libraries and files, which the kernel can drop and read again)."""
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon"):
                fields[name] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


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
    return tree_memory(pid)[0]


def tree_memory(pid: int) -> tuple[int, int]:
    """``(resident, anonymous)`` bytes of ``pid`` and all its descendants."""
    resident, anonymous, stack = 0, 0, [pid]
    while stack:
        current = stack.pop()
        rss, anon = _rss_bytes(current)
        resident, anonymous = resident + rss, anonymous + anon
        stack += _children(current)
    return resident, anonymous


class RssSampler:
    """Samples the process tree's RSS, and its anonymous part, every ``interval`` seconds
    until stopped (a peak of file pages is not one of the heap: the two tell them apart)."""

    def __init__(self, interval: float = 0.05, pid: int | None = None):
        self.interval = interval
        self.pid = pid or os.getpid()
        self.samples: list[tuple[float, int, int]] = []  # (wall-clock time, RSS, anonymous)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), *tree_memory(self.pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for moment, rss, _ in self.samples if start <= moment <= end), default=0)

    def peak_anonymous_between(self, start: float, end: float) -> int:
        return max((anon for moment, _, anon in self.samples if start <= moment <= end), default=0)

    @property
    def peak(self) -> int:
        return max((rss for _, rss, _ in self.samples), default=0)

    @property
    def peak_anonymous(self) -> int:
        return max((anon for _, _, anon in self.samples), default=0)
