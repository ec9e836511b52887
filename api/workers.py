"""Several worker processes behind one port: ``uvicorn api.main:app --workers N``.

Each worker is a process of its own, spawned by uvicorn's supervisor: it loads the champion
at start, its watcher looks for a new one every ``BAAC_MODEL_REFRESH_SECONDS``, and it
appends to its own prediction-log file (``predictions-<pid>.csv``). Every response says
which worker answered (``X-Worker-Pid``); a prediction and ``/health`` say which model
version.

Prometheus metrics need care: each process counts in its own memory, so a scrape of
``/metrics`` would see one worker at random and the counters would jump. In a worker,
prometheus_client's multiprocess mode is switched on: each process writes its samples to
memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them all up.
The mode is chosen when prometheus_client is first imported, so
``share_metrics_between_workers`` runs from ``api.multiprocess_metrics``, the first module of
ours that ``api.main`` imports. The folder is
``<BAAC_API_METRICS_DIR>/server-<supervisor pid>-<its start time>``: new at each start of the
server and shared by its workers (a pid reused after a restart comes with another start
time); the folders of servers no longer running are removed by the next worker that starts.
A worker that exits removes its live gauges (``mark_process_dead``), and those of a worker
killed are removed by the one uvicorn starts in its place; counters stay, so that totals
never go down when uvicorn replaces a worker.

A single process (plain ``uvicorn api.main:app``, the tests' ``TestClient``) keeps a
registry of its own, as before. A ``PROMETHEUS_MULTIPROC_DIR`` set by the user (gunicorn's
recipe) is used as it is: emptying it is then the user's job.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_PID_HEADER = "X-Worker-Pid"
_SERVER_PREFIX = "server-"


def supervisor_pid() -> int | None:
    """The pid of the process that spawned this one with ``multiprocessing`` (uvicorn's
    supervisor of ``--workers``), or None for a process started on its own."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else None


def process_start_time(pid: int) -> str | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``), or None when
    no such process runs. Outside Linux: "0" for any pid (the pid alone then names a server)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else "0"
    # The name (field 2) is in parentheses and may hold spaces: fields count from the last ")".
    return stat[stat.rindex(")") + 2 :].split()[19]


def server_folder_name(pid: int, started: str) -> str:
    return f"{_SERVER_PREFIX}{pid}-{started}"


def remove_folders_of_stopped_servers(base: Path) -> list[Path]:
    """Remove the metrics folders of servers that no longer run; return them."""
    removed = []
    for folder in base.glob(f"{_SERVER_PREFIX}*"):
        pid, _, started = folder.name.removeprefix(_SERVER_PREFIX).partition("-")
        if pid.isdigit() and process_start_time(int(pid)) == started:
            continue
        shutil.rmtree(folder, ignore_errors=True)  # another worker may be removing it too
        removed.append(folder)
    return removed


def remove_gauges_of_dead_workers(folder: Path) -> list[Path]:
    """Remove the live gauges of workers no longer running; return them. A worker killed
    (SIGKILL, out of memory) never removed its own (``mark_process_dead`` at exit): the worker
    uvicorn starts in its place does. prometheus_client names them ``gauge_live<mode>_<pid>.db``
    (not imported here: this runs before it may be)."""
    removed = []
    for path in folder.glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and process_start_time(int(pid)) is None:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def share_metrics_between_workers(base: Path) -> Path | None:
    """In a worker of several, switch prometheus_client to its multiprocess mode with this
    server's folder under ``base`` (see the module docstring) and return it; None in a process
    of its own. Must run before prometheus_client is imported."""
    if os.environ.get(MULTIPROC_ENV):
        return Path(os.environ[MULTIPROC_ENV])
    supervisor = supervisor_pid()
    if supervisor is None:
        return None
    started = process_start_time(supervisor)
    if started is None:  # the supervisor is gone: this worker is about to be stopped anyway
        return None
    base.mkdir(parents=True, exist_ok=True)
    remove_folders_of_stopped_servers(base)
    folder = base / server_folder_name(supervisor, started)
    folder.mkdir(exist_ok=True)
    remove_gauges_of_dead_workers(folder)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def shared_metrics_dir() -> Path | None:
    """The multiprocess metrics folder of this process, or None (a registry of its own)."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


class WorkerPidMiddleware:
    """Adds ``X-Worker-Pid`` to every response: with several workers, which one answered
    (a ``POST /model/reload`` reloads that one only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-worker-pid", str(os.getpid()).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_pid)
