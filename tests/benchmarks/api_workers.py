"""Benchmark of the scoring service with one worker process and with several.

``python -m tests.benchmarks.api_workers --tracking-uri sqlite:///data/mlflow/mlflow.db
[--workers 1 2] [--seconds 10] [--concurrency 8]`` starts ``uvicorn api.main:app --workers N``
on the champion of that registry, for each N:

1. single-user requests, closed loop: ``--concurrency`` requests always in flight (kept-alive
   connections from two client processes), for ``--seconds``: requests per second, p50 and
   p99 latency;
2. ``/health`` while 10,000-user batches are scored back to back (from a client process of
   its own): each ``/health`` on a new connection, so that it reaches whichever worker
   accepts it; p50, p99 and max, per worker and in all.

Timings depend on the machine and on what else runs on it: say how busy it was.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from ml.defaults import DBT_PROJECT_DIR
from ml.features import load_feature_spec
from tests.benchmarks.api_load import ms, road_users, start_uvicorn

CLOSE = {"connection": "close"}


def wait_for_workers(base_url: str, workers: int, timeout: float = 300) -> set[str]:
    """The pids of the workers, once each has answered /health (loaded its champion)."""
    pids: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(pids)} of {workers} workers answered in {timeout:g} s")
        response = httpx.get(f"{base_url}/health", headers=CLOSE, timeout=10)
        if response.status_code == 200:
            pids.add(response.headers["x-worker-pid"])
    return pids


async def closed_loop(base_url: str, bodies: list[bytes], seconds: float, concurrency: int) -> dict:
    """``concurrency`` loops, each sending its next request when the last is answered."""
    latencies: list[float] = []
    errors = collections.Counter()
    pids = collections.Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        end = time.perf_counter() + seconds

        async def loop(k: int) -> None:
            i = k
            while time.perf_counter() < end:
                started = time.perf_counter()
                response = await client.post("/predict", content=bodies[i % len(bodies)], headers=headers)
                latencies.append(time.perf_counter() - started)
                pids[response.headers.get("x-worker-pid")] += 1
                if response.status_code != 200:
                    errors[response.status_code] += 1
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(loop(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "errors": dict(errors), "elapsed": elapsed, "pids": dict(pids)}


def client_process(args: tuple) -> dict:
    return asyncio.run(closed_loop(*args))


def single_users(base_url: str, bodies: list[bytes], seconds: float, concurrency: int) -> dict:
    clients = 2
    jobs = [(base_url, bodies[i::clients], seconds, concurrency // clients) for i in range(clients)]
    with ProcessPoolExecutor(clients) as pool:
        results = list(pool.map(client_process, jobs))
    latencies = np.concatenate([r["latencies"] for r in results])
    pids = collections.Counter()
    for result in results:
        pids.update(result["pids"])
    errors = sum(sum(r["errors"].values()) for r in results)
    return {
        "rate": len(latencies) / max(r["elapsed"] for r in results),
        "latencies": latencies,
        "errors": errors,
        "pids": dict(pids),
    }


POST_BATCHES = """
import sys, time, httpx
body = open(sys.argv[2], "rb").read()
end = time.monotonic() + float(sys.argv[3])
took = []
with httpx.Client(timeout=300) as client:
    while time.monotonic() < end:
        started = time.perf_counter()
        response = client.post(sys.argv[1], content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text[:300]
        took.append(time.perf_counter() - started)
print(len(took), sum(took) / len(took))
"""


def health_during_batches(base_url: str, batch: Path, seconds: float) -> dict:
    batches = subprocess.Popen(
        [sys.executable, "-c", POST_BATCHES, f"{base_url}/predict", str(batch), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    by_pid: dict[str, list[float]] = collections.defaultdict(list)
    time.sleep(0.5)  # the first batch is under way
    with httpx.Client(base_url=base_url, headers=CLOSE, timeout=30) as client:
        while batches.poll() is None:
            started = time.perf_counter()
            response = client.get("/health")
            took = time.perf_counter() - started
            assert response.status_code == 200
            by_pid[response.headers["x-worker-pid"]].append(took)
            time.sleep(0.01)
    count, mean = batches.stdout.read().split()
    return {"by_pid": by_pid, "batches": int(count), "batch_seconds": float(mean)}


def quantiles(seconds) -> str:
    seconds = np.asarray(seconds)
    return f"{ms(seconds, 50)} / {ms(seconds, 99)} / {1000 * seconds.max():.1f} ms (n={len(seconds)})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracking-uri", required=True, help="the MLflow registry holding the champion")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="single-user requests in flight")
    args = parser.parse_args(argv)
    spec = load_feature_spec(DBT_PROJECT_DIR)
    singles = [json.dumps(u).encode() for u in road_users(spec, 1_000, seed=1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "batch.json"
        batch.write_text(json.dumps(road_users(spec, 10_000, seed=2)))
        for workers in args.workers:
            process, base_url, _ = start_uvicorn(args.tracking_uri, Path(tmp) / f"log-{workers}", workers)
            try:
                wait_for_workers(base_url, workers)
                load = os.getloadavg()[0]
                result = single_users(base_url, singles, args.seconds, args.concurrency)
                rows.append(
                    (
                        f"{workers} worker(s): one road user per request, {args.concurrency} in flight, "
                        f"{args.seconds:g} s (load average {load:.1f} before)",
                        f"{result['rate']:.0f} req/s; p50 / p99 {ms(result['latencies'], 50)} / "
                        f"{ms(result['latencies'], 99)}; errors {result['errors']}; "
                        f"per worker {sorted(result['pids'].values(), reverse=True)}",
                    )
                )
                health = health_during_batches(base_url, batch, args.seconds)
                every = [t for times in health["by_pid"].values() for t in times]
                rows.append(
                    (
                        f"{workers} worker(s): /health (new connection) during 10,000-user batches "
                        f"({health['batches']} of {health['batch_seconds']:.2f} s): p50 / p99 / max",
                        quantiles(every)
                        + "".join(f"; worker {pid}: {quantiles(t)}" for pid, t in health["by_pid"].items()),
                    )
                )
            finally:
                process.terminate()
                process.wait(timeout=60)
    print(f"\ncores available: {len(os.sched_getaffinity(0))}\n")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
