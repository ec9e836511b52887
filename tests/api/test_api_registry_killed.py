"""A real MLflow tracking server serves the registry; the API loads its champion from it;
the server is killed (SIGKILL, its whole process group); 40 concurrent /model/reload fire,
in waves, while /predict and /health are timed. They keep answering, and SIGTERM stops the
API within seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from orchestration.mlflow_ui import server_environment
from tests.servers import free_port, loopback_client, uvicorn_server

pytestmark = pytest.mark.attack

RELOADS = 40
WAVES = 5
PREDICTIONS = 300


@pytest.fixture
def mlflow_server(champion, tmp_path):
    """``mlflow server`` on loopback over a copy of the tiny champion's store (its artifacts
    stay where the runs say: a local path the API reads directly)."""
    store = tmp_path / "mlflow.db"
    shutil.copy(champion.tracking_uri.removeprefix("sqlite:///"), store)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
        + ["--backend-store-uri", f"sqlite:///{store}", "--workers", "1"],
        env=server_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed whole, workers included
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        with loopback_client(timeout=2) as client:
            while time.monotonic() < deadline:
                assert process.poll() is None, "mlflow server exited"
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            else:
                raise RuntimeError("mlflow server did not answer within 120 s")
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_the_api_outlives_a_killed_mlflow_server(mlflow_server, champion, typical, tmp_path):
    url, registry = mlflow_server
    with uvicorn_server(url, tmp_path / "predictions") as api:
        with httpx.Client(base_url=api.base_url, timeout=10) as client:
            assert client.get("/model").json()["version"] == champion.version  # served by the server
            os.killpg(registry.pid, signal.SIGKILL)
            registry.wait(timeout=10)

            latencies: list[float] = []
            health: list[int] = []
            done = threading.Event()

            def predict_and_check_health() -> None:
                with httpx.Client(base_url=api.base_url, timeout=10) as own:
                    for i in range(PREDICTIONS):
                        started = time.perf_counter()
                        assert own.post("/predict", json=typical).status_code == 200
                        latencies.append(time.perf_counter() - started)
                        if i % 10 == 0:
                            health.append(own.get("/health").status_code)
                done.set()

            timer = threading.Thread(target=predict_and_check_health)
            timer.start()
            statuses: list[int] = []
            with ThreadPoolExecutor(RELOADS) as pool:
                for _ in range(WAVES):
                    statuses += [
                        r.status_code
                        for r in pool.map(lambda _: client.post("/model/reload"), range(RELOADS))
                    ]
                    time.sleep(0.05)
            timer.join(timeout=120)
            assert done.is_set() and len(latencies) == PREDICTIONS
            refresh = client.get("/model/refresh").json()
            assert client.get("/model").json()["version"] == champion.version  # the model held is kept

        p50, p99 = np.percentile(latencies, [50, 99])
        print(
            f"/predict during {WAVES}x{RELOADS} reloads on a killed registry: p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; reloads {statuses.count(202)} "
            f"x 202, {statuses.count(409)} x 409; last refresh error: {refresh['error']}"
        )
        assert set(statuses) <= {202, 409} and 202 in statuses
        assert set(health) == {200}
        assert p99 < 1.0, sorted(latencies)[-5:]
        assert refresh["error"] or refresh["running"]
        assert api.stop(timeout=30) < 5
