"""The API as several worker processes behind one port (issue 14): ``uvicorn api.main:app
--workers 2`` over real HTTP on loopback, on a registry of its own (a copy of the tiny
champion's store, so that a promotion here touches no other test).

Requests that must reach both workers open a connection each (``Connection: close``): the
kernel hands each new connection to whichever worker accepts first."""

from __future__ import annotations

import collections
import csv
import io
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from api.prediction_log import COMPACTED_FILE, compact, logged_days, read_prediction_log
from api.workers import (
    MULTIPROC_ENV,
    process_start_time,
    remove_folders_of_stopped_servers,
    remove_gauges_of_dead_workers,
    server_folder_name,
    share_metrics_between_workers,
)
from ml.defaults import PROJECT_ROOT
from ml.registry import CHAMPION, REGISTERED_MODEL
from tests.api.conftest import champion, mlflow_globals_restored, spec  # noqa: F401 (fixtures)
from tests.benchmarks.api_load import road_users
from tests.servers import free_port, loopback_client

# Every test here shares one server: under ``pytest -n`` they run on one test process.
pytestmark = pytest.mark.xdist_group("api_workers")

WORKERS = 2
REFRESH_SECONDS = 1.0
CLOSE = {"connection": "close"}
#: Every request on a new connection (CLOSE), so that either worker may take it.
HTTP = loopback_client(headers=CLOSE, timeout=30)


@dataclass
class Workers:
    process: subprocess.Popen
    base_url: str
    tracking_uri: str
    log_dir: Path
    metrics_base: Path
    output: Path


def store_copy(tracking_uri: str, folder: Path) -> str:
    """A copy of a SQLite MLflow store (its artifacts stay where they are: paths are absolute)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(tracking_uri.removeprefix("sqlite:///"), folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


def answered_by(base_url: str, requests: int) -> collections.Counter:
    """(worker pid, model version) of ``requests`` GET /health, each on a new connection."""
    seen = collections.Counter()
    for _ in range(requests):
        response = HTTP.get(f"{base_url}/health")
        assert response.status_code == 200, response.text
        seen[(response.headers["x-worker-pid"], response.json()["model_version"])] += 1
    return seen


@pytest.fixture(scope="module")
def workers(champion, tmp_path_factory) -> Iterator[Workers]:  # noqa: F811
    root = tmp_path_factory.mktemp("api-workers")
    tracking_uri = store_copy(champion.tracking_uri, root / "mlflow")
    metrics_base = root / "metrics"
    # What a server killed earlier would leave: removed when the new one starts.
    (metrics_base / "server-999999999-1").mkdir(parents=True)
    (metrics_base / "server-999999999-1" / "counter_123.db").write_bytes(b"stale")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_HTTP_REQUEST", "BAAC_")) and key != MULTIPROC_ENV
    }
    environment.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        BAAC_PREDICTION_LOG_DIR=str(root / "predictions"),
        BAAC_MODEL_REFRESH_SECONDS=str(REFRESH_SECONDS),
        BAAC_API_WORKERS=str(WORKERS),
        BAAC_API_METRICS_DIR=str(metrics_base),
        OMP_NUM_THREADS="1",
    )
    port = free_port()
    output = root / "uvicorn.log"
    with open(output, "w") as log:
        # The command the team profile runs (make serve with BAAC_API_WORKERS=2).
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", str(WORKERS)],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Workers(
        process, f"http://127.0.0.1:{port}", tracking_uri, root / "predictions", metrics_base, output
    )
    try:
        deadline = time.monotonic() + 180
        pids: set[str] = set()
        while len(pids) < WORKERS:  # a worker accepts once its champion is loaded
            assert time.monotonic() < deadline, f"not {WORKERS} workers in 180 s:\n{output.read_text()}"
            assert process.poll() is None, f"uvicorn exited:\n{output.read_text()}"
            try:
                pids |= {pid for pid, _ in answered_by(server.base_url, 4)}
            except httpx.TransportError:
                time.sleep(0.3)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def prometheus_samples(base_url: str) -> tuple[str, dict[str, list]]:
    """(worker pid that answered, the samples of each family) of one scrape of /metrics."""
    response = HTTP.get(f"{base_url}/metrics")
    assert response.status_code == 200
    families = {f.name: f.samples for f in text_string_to_metric_families(response.text)}
    return response.headers["x-worker-pid"], families


def predict_count(samples: dict[str, list]) -> float:
    return sum(
        s.value
        for s in samples["baac_api_requests"]
        if s.name.endswith("_total") and s.labels["path"] == "/predict" and s.labels["status"] == "200"
    )


def test_both_workers_serve_the_champion_and_stale_metrics_are_gone(workers, champion):  # noqa: F811
    seen = answered_by(workers.base_url, 30)
    while len({pid for pid, _ in seen}) < WORKERS and seen.total() < 300:  # the kernel's choice
        seen += answered_by(workers.base_url, 10)
    assert len({pid for pid, _ in seen}) == WORKERS, seen
    assert {version for _, version in seen} == {champion.version}
    # One metrics folder, this server's; the one of the server "killed earlier" was removed.
    folders = list(workers.metrics_base.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith(f"server-{workers.process.pid}-"), folders


def test_metrics_add_up_over_the_workers(workers, spec):  # noqa: F811
    _, before = prometheus_samples(workers.base_url)
    users = iter(road_users(spec, 300, seed=3))
    pids = collections.Counter()
    while pids.total() < 40 or len(pids) < WORKERS:  # 40 at least, and both workers some
        response = HTTP.post(f"{workers.base_url}/predict", json=next(users))
        assert response.status_code == 200, response.text
        pids[response.headers["x-worker-pid"]] += 1
    sent = pids.total()
    scrapes = [prometheus_samples(workers.base_url) for _ in range(8)]
    while len({pid for pid, _ in scrapes}) < WORKERS and len(scrapes) < 100:
        scrapes.append(prometheus_samples(workers.base_url))
    assert len({pid for pid, _ in scrapes}) == WORKERS  # and a scrape of either says the same
    for _, after in scrapes:
        assert predict_count(after) - predict_count(before) == sent
        scored = [s.value for s in after["baac_api_predictions"] if s.name.endswith("_total")]
        scored_before = [s.value for s in before.get("baac_api_predictions", []) if s.name.endswith("_total")]
        assert sum(scored) - sum(scored_before) == sent
        # One series, no pid label: the lowest of the running workers.
        assert [(s.labels, s.value) for s in after["baac_api_champion_loaded"]] == [({}, 1.0)]


def log_key(row: dict, names: list[str]) -> tuple:
    """A road user's inputs as the log holds them: None for "not recorded"."""
    return tuple(
        None if row[n] is None or (isinstance(row[n], float) and math.isnan(row[n])) else float(row[n])
        for n in names
    )


def test_the_prediction_log_holds_every_answered_row_once_under_concurrent_load(workers, spec, tmp_path):  # noqa: F811
    names = spec.names
    before = read_prediction_log(workers.log_dir)
    sizes = [1, 3, 70, 1, 12, 1, 100, 2]  # below and above the Arrow formatting threshold (64)
    requests = [
        road_users(spec, sizes[i % len(sizes)], seed=1000 + i) for i in range(96)
    ]  # 96 requests, 2,280 road users

    def post(i: int) -> tuple[list[dict], httpx.Response]:
        body = requests[i] if sizes[i % len(sizes)] > 1 else requests[i][0]
        headers = CLOSE if i % 2 else {}  # some on new connections, some on kept ones
        response = client_for(i).post("/predict", json=body, headers=headers)
        return requests[i], response

    clients = [httpx.Client(base_url=workers.base_url, timeout=60) for _ in range(8)]

    def client_for(i: int) -> httpx.Client:
        return clients[i % len(clients)]

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(len(requests))))
    finally:
        for client in clients:
            client.close()
    assert [r.status_code for _, r in answers] == [200] * len(requests)
    rows_by_pid = collections.Counter()
    sent = collections.Counter()
    for users, response in answers:
        body = response.json()
        predictions = body["predictions"] if "predictions" in body else [body]
        assert len(predictions) == len(users)
        rows_by_pid[response.headers["x-worker-pid"]] += len(users)
        for user, prediction in zip(users, predictions, strict=True):
            sent[(log_key(user, names), body["model"]["version"], prediction["severity"])] += 1
    assert len(rows_by_pid) == WORKERS, rows_by_pid

    log = read_prediction_log(workers.log_dir)
    earlier = set(zip(before["request_id"], before["request_row"], strict=True)) if len(before) else set()
    new = log[[key not in earlier for key in zip(log["request_id"], log["request_row"], strict=True)]]
    assert len(new) == sum(sizes[i % len(sizes)] for i in range(len(requests))) == 2280
    logged = collections.Counter(
        (log_key(row, names), row["model_version"], int(row["predicted_severity"]))
        for row in new.to_dict("records")
    )
    assert logged == sent  # exactly the answered rows: none lost, none twice, none invented

    # Each worker wrote its own file, one whole line per row: no line cut or mixed with another.
    files = sorted(workers.log_dir.glob("date=*/predictions-*.csv"))
    per_file = collections.Counter()
    for path in files:
        lines = list(csv.reader(io.StringIO(path.read_text())))
        header, rows = lines[0], lines[1:]
        assert all(len(row) == len(header) for row in rows), path
        per_file[path.name.removeprefix("predictions-").removesuffix(".csv")] += len(rows)
    assert set(rows_by_pid) <= set(per_file)
    for pid, rows in rows_by_pid.items():  # every row in the file of the worker that answered it
        assert per_file[pid] >= rows
    assert sum(per_file.values()) == len(log)

    # Compaction of the day (once closed: here a copy, compacted as the day after would):
    # both workers' files fold into one Parquet file per day.
    copy = tmp_path / "predictions"
    shutil.copytree(workers.log_dir, copy)
    days = logged_days(copy)
    done = compact(copy, today=days[-1] + timedelta(days=1), quiet_seconds=0)
    assert sum(done.values()) == len(log)
    for day in days:
        folder = copy / f"date={day:%Y-%m-%d}"
        assert [p.name for p in folder.iterdir()] == [COMPACTED_FILE]
    compacted = read_prediction_log(copy)
    assert len(compacted) == len(log)
    assert not compacted.duplicated(["request_id", "request_row"]).any()


def test_a_promotion_reaches_every_worker_within_the_refresh_period(workers, champion):  # noqa: F811
    client = MlflowClient(tracking_uri=workers.tracking_uri, registry_uri=workers.tracking_uri)
    current = client.get_model_version(REGISTERED_MODEL, champion.version)
    # A ``models:/<model_id>`` source is looked up through MLflow's process-wide tracking URI
    # (its SQL store's own TODO), not the client's: point it at the copy meanwhile.
    with mlflow_globals_restored():
        mlflow.set_tracking_uri(workers.tracking_uri)
        new = client.create_model_version(
            REGISTERED_MODEL, current.source, run_id=current.run_id, tags=current.tags
        )
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, new.version)
    promoted = time.monotonic()
    # Each worker looks every second (and loads the new version, a few hundred ms): allow
    # for a busy machine, then ask again until both answer with the new version.
    while True:
        seen = answered_by(workers.base_url, 12)
        pids = {pid for pid, _ in seen}
        if {version for _, version in seen} == {str(new.version)} and len(pids) == WORKERS:
            break
        assert time.monotonic() - promoted < 20 * REFRESH_SECONDS, seen
    took = time.monotonic() - promoted
    print(f"both workers on version {new.version} {took:.1f} s after the promotion")
    # /model/reload reaches one worker, which says who it is.
    response = HTTP.post(f"{workers.base_url}/model/reload")
    assert response.status_code in (202, 409), response.text
    assert response.headers["x-worker-pid"] in pids


def test_workers_stop_cleanly_and_leave_no_live_gauge(workers):
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(timeout=60) == 0, workers.output.read_text()
    (folder,) = workers.metrics_base.iterdir()
    left = sorted(p.name for p in folder.iterdir())
    assert not [name for name in left if name.startswith("gauge_live")], left
    assert [name for name in left if name.startswith("counter_")], left  # totals stay


def test_only_the_metrics_folders_of_stopped_servers_are_removed(tmp_path):
    running = tmp_path / server_folder_name(os.getpid(), process_start_time(os.getpid()))
    restarted = tmp_path / server_folder_name(os.getpid(), "1")  # this pid, another start: reused
    stopped = tmp_path / server_folder_name(999_999_999, "1")
    for folder in (running, restarted, stopped):
        folder.mkdir()
    assert sorted(remove_folders_of_stopped_servers(tmp_path)) == sorted([restarted, stopped])
    assert list(tmp_path.iterdir()) == [running]


def test_the_live_gauges_of_a_killed_worker_are_removed_by_its_replacement(tmp_path):
    running = [tmp_path / f"gauge_livemin_{os.getpid()}.db", tmp_path / f"counter_{999_999_999}.db"]
    killed = tmp_path / f"gauge_livemin_{999_999_999}.db"  # its counts stay, its gauges go
    for path in [*running, killed]:
        path.write_bytes(b"")
    assert remove_gauges_of_dead_workers(tmp_path) == [killed]
    assert sorted(tmp_path.iterdir()) == sorted(running)


def test_a_process_on_its_own_keeps_its_own_registry(monkeypatch, tmp_path):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert share_metrics_between_workers(tmp_path) is None  # pytest is no uvicorn worker
    assert MULTIPROC_ENV not in os.environ and not list(tmp_path.iterdir())


SPAWNED_CHILD = """
import multiprocessing, os

def child():
    import api.prediction_log  # as the Dagster assets that compact the log do
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(pool.apply(child))
"""


def test_a_spawned_process_that_uses_part_of_the_service_keeps_its_own_registry(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(SPAWNED_CHILD)
    environment = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    environment.update(BAAC_API_METRICS_DIR=str(tmp_path / "metrics"), PYTHONPATH=str(PROJECT_ROOT))
    # A timeout: a pool whose worker ignores SIGTERM never terminates (tests/conftest.py);
    # its own session, so that the pool's workers go with it.
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise
    assert stdout.strip() == "None", stderr
    assert not (tmp_path / "metrics").exists()
