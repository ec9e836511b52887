"""The service in one real uvicorn process on loopback: a large batch does not stall
/health, acknowledged predictions survive a crash, and a registry that is down (silent or
refusing) costs no request and does not hold up shutdown; a server the tests start never
blocks on its own output."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from api.prediction_log import read_prediction_log
from tests.servers import loopback_client, uvicorn_server

BATCH = 10_000


def batch_of(typical: dict, size: int) -> list[dict]:
    ages = np.random.default_rng(0).integers(0, 99, size=size).tolist()
    return [{**typical, "age": age} for age in ages]


@pytest.fixture(scope="module")
def server(champion, tmp_path_factory) -> Iterator:
    with uvicorn_server(champion.tracking_uri, tmp_path_factory.mktemp("predictions")) as server:
        yield server


POST_BATCH = """
import sys, time, httpx
body = open(sys.argv[2], "rb").read()
started = time.perf_counter()
response = httpx.post(sys.argv[1], content=body, headers={"content-type": "application/json"}, timeout=120)
seconds = time.perf_counter() - started
print(response.status_code, len(response.json()["predictions"]), seconds)
"""


def test_health_answers_while_a_large_batch_is_scored(server, typical, tmp_path):
    body = tmp_path / "batch.json"
    body.write_text(json.dumps(batch_of(typical, BATCH)))
    health = []
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        client.get("/health")  # connection open before the batch starts
        # The batch's client in a process of its own: its JSON work must not delay ours.
        batch = subprocess.Popen(
            [sys.executable, "-c", POST_BATCH, f"{server.base_url}/predict", str(body)],
            stdout=subprocess.PIPE,
            text=True,
        )
        while batch.poll() is None:
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            health.append(time.perf_counter() - started)
            time.sleep(0.01)
    status, predictions, seconds = batch.stdout.read().split()
    assert (status, predictions) == ("200", str(BATCH))
    assert len(health) >= 3, seconds  # the batch was long enough to be checked on
    assert max(health) < 0.2, (sorted(health)[-5:], seconds)


def test_acknowledged_predictions_are_on_disk_when_the_process_dies(champion, typical, tmp_path):
    with uvicorn_server(champion.tracking_uri, tmp_path) as server:
        bodies = [{**typical, "age": age} for age in range(40)]
        with ThreadPoolExecutor(8) as pool, loopback_client(timeout=60) as client:
            answers = list(pool.map(lambda b: client.post(f"{server.base_url}/predict", json=b), bodies))
        assert [a.status_code for a in answers] == [200] * len(bodies)
        server.process.send_signal(signal.SIGKILL)  # no shutdown, no flush: only what was fsynced
        server.process.wait(timeout=30)
    rows = read_prediction_log(tmp_path)
    assert sorted(rows["age"]) == list(map(float, range(40)))  # N concurrent requests -> N rows
    assert rows["logged_at"].is_monotonic_increasing
    by_age = {row.age: row.p_killed for row in rows.itertuples()}
    for body, answer in zip(bodies, answers, strict=True):
        assert by_age[float(body["age"])] == answer.json()["probabilities"]["killed"]


def test_the_server_keeps_answering_after_more_output_than_a_pipe_holds(server):
    """Schemathesis once stalled here for 30 s a request: the tests' uvicorn printed into a
    pipe nobody read, and each access-log line after the first 64 KiB blocked its event loop."""
    requests = 2_000  # about 150 KB of access log, more than twice a pipe's 64 KiB
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        assert [client.get("/health").status_code for _ in range(requests)] == [200] * requests
    assert server.output().count('"GET /health HTTP/1.1" 200') >= requests


class SilentServer:
    """Accepts connections and never answers (a registry hung behind a load balancer)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)  # held open, never read, never answered

    def close(self) -> None:
        self.sock.close()
        for connection in self.connections:
            connection.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once it is closed


@pytest.mark.parametrize("registry", ["silent", "closed"])
def test_a_registry_that_is_down_costs_no_request_and_no_shutdown(champion, typical, tmp_path, registry):
    silent = SilentServer() if registry == "silent" else None
    port = silent.port if silent else closed_port()
    try:
        with uvicorn_server(
            champion.tracking_uri,
            tmp_path,
            app="tests.api.outage_app:create",
            factory=True,
            OUTAGE_REGISTRY_URI=f"http://127.0.0.1:{port}",
            # Longer than the test: a refresh on the silent registry is still waiting at SIGTERM.
            BAAC_REGISTRY_TIMEOUT_SECONDS="120",
        ) as server:
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                with ThreadPoolExecutor(40) as pool:
                    reloads = list(pool.map(lambda _: client.post("/model/reload"), range(40)))
                statuses = [r.status_code for r in reloads]
                assert set(statuses) <= {202, 409} and 202 in statuses, statuses
                if silent:
                    assert statuses.count(202) == 1  # at most one refresh at a time
                    assert "already running" in next(r for r in reloads if r.status_code == 409).text
                    assert client.get("/model/refresh").json()["running"] is True
                latencies = []
                for _ in range(100):
                    started = time.perf_counter()
                    assert client.post("/predict", json=typical).status_code == 200
                    latencies.append(time.perf_counter() - started)
                assert client.get("/health").json()["status"] == "ok"
                assert client.get("/metrics").status_code == 200
                assert np.percentile(latencies, 99) < 0.25, sorted(latencies)[-5:]
                if not silent:
                    deadline = time.monotonic() + 30
                    while (status := client.get("/model/refresh").json())["running"]:
                        assert time.monotonic() < deadline
                        time.sleep(0.1)
                    assert status["error"] and status["outcome"] is None
            assert server.stop(timeout=30) < 5
    finally:
        if silent:
            silent.close()
