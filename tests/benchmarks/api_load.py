"""Benchmark of the scoring service: in-process scoring, then one uvicorn process under load.

``python -m tests.benchmarks.api_load --tracking-uri sqlite:///data/mlflow/mlflow.db
[--rate 200 --seconds 30]`` scores the champion of that registry:

1. in process: road users scored per second by the compiled champion (``ml.array_model``)
   for batches of 1, 100, 10,000 and 100,000 rows, beside the pipeline on a DataFrame (the
   path before it); the latency of one road user (p50/p99 over 1,000 calls), for the model
   alone and for validation + encoding + scoring as /predict does it; the latency of
   explaining one road user (``ml.explain``: features + 1 rows in one batched scoring);
2. over HTTP: ``uvicorn api.main:app`` (one process) on loopback, offered single-user
   requests at a fixed arrival rate for a while by an async httpx client (each request's
   latency counts from its scheduled start, so a late client does not hide a slow server),
   then 10,000-user batches: random valid road users (every code as likely as any other),
   and, with ``--warehouse``, real ones (rows of the test split, which follow the paths
   the trees learnt: they score about twice as fast). The load comes from ``--clients``
   processes (an async client is CPU-bound at these rates); the server's own timing of
   /predict (its Prometheus histogram) is printed beside, to tell a slow server from a
   slow client.

It prints a markdown table. Timings depend on the machine and on what else runs on it:
run it alone for figures worth quoting.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
import pandas as pd

from api.batch_reader import RoadUserReader
from api.model_store import ChampionStore
from api.scoring import explanation_dicts, predict_severity
from ml.defaults import DBT_PROJECT_DIR, PROJECT_ROOT
from ml.features import FeatureSpec, load_feature_spec
from ml.registry import REGISTERED_MODEL
from tests.servers import free_port, loopback_client


def road_users(spec: FeatureSpec, rows: int, seed: int = 0) -> list[dict]:
    """Valid road users: codes of the code book, numbers in range, 10% not recorded."""
    rng = np.random.default_rng(seed)
    columns = {}
    for feature in spec.features:
        if feature.is_categorical:
            values = rng.choice(sorted(feature.codes), size=rows).tolist()
        elif feature.data_type == "integer":
            values = rng.integers(feature.minimum, feature.maximum, size=rows, endpoint=True).tolist()
        else:
            values = np.round(rng.uniform(feature.minimum, feature.maximum, size=rows), 5).tolist()
        missing = rng.random(rows) < 0.1
        columns[feature.name] = [None if m else v for v, m in zip(values, missing, strict=True)]
    return [{name: columns[name][i] for name in spec.names} for i in range(rows)]


def as_array(users: list[dict], spec: FeatureSpec) -> np.ndarray:
    return np.array([[u[n] for n in spec.names] for u in users], dtype=np.float64)


def timed(function, repeat: int) -> np.ndarray:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return np.array(seconds)


def load_champion(tracking_uri: str, spec: FeatureSpec) -> tuple[ChampionStore, float]:
    """A store holding the champion, and the seconds its load took (registry, download,
    deserialisation, compilation), as the API's start-up and each refresh do it."""
    store = ChampionStore(tracking_uri, spec.names)
    started = time.perf_counter()
    store.refresh()
    if store.model is None:
        raise SystemExit(f"No champion in {tracking_uri}")
    return store, time.perf_counter() - started


def in_process(tracking_uri: str, spec: FeatureSpec) -> list[tuple[str, str]]:
    store, first = load_champion(tracking_uri, spec)  # the first also imports what loading needs
    _, again = load_champion(tracking_uri, spec)
    model = store.model
    users = road_users(spec, 100_000)
    X = as_array(users, spec)
    rows: list[tuple[str, str]] = [("champion", f"version {model.version}, {type(model.scorer).__name__}")]
    rows.append(
        (
            "in process, champion loaded from the registry and compiled: first (with its imports) / again",
            f"{first:.2f} s / {again:.2f} s",
        )
    )
    for n in (1, 100, 10_000, 100_000):
        repeat = max(3, min(200, 200_000 // n))
        seconds = np.median(timed(lambda n=n: model.scorer.predict_proba(X[:n]), repeat))
        rows.append((f"in process, compiled champion, batch of {n:,}", f"{n / seconds:,.0f} road users/s"))
    import mlflow.sklearn  # the service reads the compiled trees: the pipeline, for comparison

    pipeline = mlflow.sklearn.load_model(
        store.client.get_model_version_download_uri(REGISTERED_MODEL, model.version)
    )
    for n in (1, 10_000):
        frame = pd.DataFrame(X[:n], columns=spec.names)
        seconds = np.median(timed(lambda f=frame: pipeline.predict_proba(f), 3 if n > 1 else 50))
        rows.append(
            (
                f"in process, pipeline on a DataFrame (before), batch of {n:,}",
                f"{n / seconds:,.0f} road users/s",
            )
        )
    one = timed(lambda: model.scorer.predict_proba(X[:1]), 1_000)
    rows.append(("in process, one road user, model only: p50 / p99", f"{ms(one, 50)} / {ms(one, 99)}"))
    reader = RoadUserReader(spec)
    body = json.dumps(users[0]).encode()

    def validate_encode_score() -> None:
        predict_severity(model.scorer, reader.read(body)[0], spec)

    one = timed(validate_encode_score, 1_000)
    rows.append(
        (
            "in process, one road user, validated + encoded + scored: p50 / p99",
            f"{ms(one, 50)} / {ms(one, 99)}",
        )
    )
    if model.reference is not None:  # a champion stored with its reference road user
        one = timed(lambda: explanation_dicts(model.scorer, model.reference, X[:1], spec, 5), 300)
        rows.append(
            (
                f"in process, one road user explained ({len(spec.names) + 1} rows, one call): p50 / p99",
                f"{ms(one, 50)} / {ms(one, 99)}",
            )
        )
    return rows


def ms(seconds: np.ndarray, percentile: float) -> str:
    return f"{1000 * np.percentile(seconds, percentile):.2f} ms"


def start_uvicorn(tracking_uri: str, log_dir: Path, workers: int = 1) -> tuple[subprocess.Popen, str, float]:
    """``uvicorn api.main:app`` with ``workers`` processes, once /health answers (with
    several, once the first worker has loaded the champion); the seconds that took."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "BAAC_PREDICTION_LOG_DIR": str(log_dir),
        "BAAC_MODEL_REFRESH_SECONDS": "0",
        "BAAC_API_METRICS_DIR": str(log_dir / "metrics"),  # several workers: not under data/
    }
    env.pop("BAAC_API_KEY", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--log-level", "warning", "--workers", str(workers)],
        cwd=PROJECT_ROOT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    with loopback_client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit("uvicorn exited")
            try:
                if client.get(f"{base_url}/health").status_code == 200:
                    return process, base_url, time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    process.kill()
    raise SystemExit("uvicorn did not answer /health within 180 s")


async def fixed_rate(base_url: str, bodies: list[bytes], rate: float, seconds: float, offset: float) -> dict:
    """Offer ``rate`` requests per second for ``seconds``, whatever the answers' pace (the
    first at ``offset`` seconds, so that several clients interleave)."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await client.get("/health")
        start = time.perf_counter() + offset

        async def one(i: int, scheduled: float) -> None:
            try:
                response = await client.post("/predict", content=bodies[i % len(bodies)], headers=headers)
                if response.status_code != 200:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            except httpx.HTTPError as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            latencies.append(time.perf_counter() - scheduled)

        tasks = []
        for i in range(total):  # each request starts at its time, answered or not the ones before
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "total": total, "elapsed": elapsed}


def client_process(args: tuple) -> dict:
    """One load client (a process of its own: an async client is CPU-bound at these rates).

    A forked client inherits this process's heap (MLflow, scikit-learn, the champion):
    frozen, out of the cyclic collector's sight. Else both clients ran a full collection of
    it at the same instant mid-load (about 220 ms each), and those stalls counted as the
    server's latency: at 200 req/s on an otherwise idle 2-core machine the p99 was 22 ms to
    11.5 s over 19 runs (some with experiments beside), then 8 ms to 20 ms over five
    (docs/benchmark/national-2026-12-02b.md)."""
    gc.freeze()
    return asyncio.run(fixed_rate(*args))


def offered_load(base_url: str, bodies: list[bytes], rate: float, seconds: float, clients: int) -> dict:
    start_at = 1.0  # every client's first request, after they all connected
    jobs = [
        (base_url, bodies[i::clients], rate / clients, seconds, start_at + i / rate) for i in range(clients)
    ]
    with ProcessPoolExecutor(clients) as pool:
        results = list(pool.map(client_process, jobs))
    latencies = np.concatenate([r["latencies"] for r in results])
    errors: dict[str, int] = {}
    for result in results:
        for key, count in result["errors"].items():
            errors[key] = errors.get(key, 0) + count
    achieved = sum(r["total"] for r in results) / max(r["elapsed"] for r in results)
    return {"latencies": latencies, "errors": errors, "achieved": achieved}


def server_latency(base_url: str) -> tuple[float, int, dict[float, float]]:
    """/predict as the server measured it (Prometheus histogram): mean, count, share within
    each bucket bound."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    buckets, total, count = {}, 0.0, 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("path") != "/predict" or sample.labels.get("method") != "POST":
                continue
            if sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = int(sample.value)
    shares = {bound: value / count for bound, value in sorted(buckets.items())} if count else {}
    return (total / count if count else float("nan")), count, shares


def real_road_users(warehouse: Path, spec: FeatureSpec, rows: int) -> list[dict]:
    """``rows`` road users of the test split (by accident number), as /predict takes them."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        frame = conn.execute(
            f"select {', '.join(spec.names)} from marts.ml_features where split = 'test' "
            "order by num_acc limit ?",
            [rows],
        ).df()
    return [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def over_http(
    tracking_uri: str,
    spec: FeatureSpec,
    rate: float,
    seconds: float,
    clients: int,
    warehouse: Path | None = None,
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        process, base_url, start_seconds = start_uvicorn(tracking_uri, Path(tmp))
        rows.append(
            (
                "HTTP, one uvicorn process: start to its first /health 200 (imports, champion load)",
                f"{start_seconds:.2f} s",
            )
        )
        try:
            singles = [json.dumps(u).encode() for u in road_users(spec, 1_000, seed=1)]
            result = offered_load(base_url, singles, rate, seconds, clients)
            lat = result["latencies"]
            rows.append(
                (
                    f"HTTP, one road user per request, {rate:g} req/s offered for {seconds:g} s: "
                    "p50 / p95 / p99",
                    f"{ms(lat, 50)} / {ms(lat, 95)} / {ms(lat, 99)}",
                )
            )
            errors = ", ".join(f"{k}: {v}" for k, v in result["errors"].items()) or "0"
            rows.append(
                (
                    f"HTTP, achieved rate ({clients} client processes); errors",
                    f"{result['achieved']:.0f} req/s of {rate:g}; errors {errors}",
                )
            )
            mean, count, shares = server_latency(base_url)
            within = ", ".join(
                f"{100 * shares[b]:.1f}% <= {1000 * b:g} ms" for b in (0.01, 0.025, 0.1) if b in shares
            )
            rows.append(
                (
                    "HTTP, /predict as the server timed it: mean; share within",
                    f"{1000 * mean:.2f} ms; {within}",
                )
            )
            batches = {"random": road_users(spec, 10_000, seed=2)}
            if warehouse is not None:
                batches["real, test split"] = real_road_users(warehouse, spec, 10_000)
            headers = {"content-type": "application/json"}
            with httpx.Client(base_url=base_url, timeout=120) as client:
                for kind, users in batches.items():
                    batch, took = json.dumps(users).encode(), []
                    for _ in range(5):
                        started = time.perf_counter()
                        response = client.post("/predict", content=batch, headers=headers)
                        took.append(time.perf_counter() - started)
                        assert response.status_code == 200, response.text[:500]
                    rows.append(
                        (
                            f"HTTP, batch of 10,000 road users ({kind}): median (min) of 5",
                            f"{np.median(took):.3f} s ({min(took):.3f} s)",
                        )
                    )
        finally:
            process.terminate()
            process.wait(timeout=30)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracking-uri", required=True, help="the MLflow registry holding the champion")
    parser.add_argument("--rate", type=float, default=200, help="requests offered per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long they are offered")
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--warehouse", type=Path, help="a warehouse whose test split gives real road users")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args(argv)
    spec = load_feature_spec(DBT_PROJECT_DIR)
    rows = in_process(args.tracking_uri, spec)
    if not args.skip_http:
        rows += over_http(args.tracking_uri, spec, args.rate, args.seconds, args.clients, args.warehouse)
    print(f"\ncores available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}\n")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
