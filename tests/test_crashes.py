"""Crashes leave no debris: a killed pipeline takes its dbt with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestration import settings
from orchestration.assets.dbt import DBT_WITH_PARENT

pytestmark = pytest.mark.attack


def processes_running(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def test_dbt_dies_with_the_process_that_started_it(tmp_path):
    """A parent that starts `dbt build` on the sample through the launcher, then is killed -9."""
    import duckdb

    from orchestration.ingestion.load import load_raw_table
    from orchestration.ingestion.tables import RAW_TABLES
    from tests.conftest import SAMPLE_DIR

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        for table in RAW_TABLES.values():
            load_raw_table(conn, table, [SAMPLE_DIR / table.kaggle_file], [2016])
    marker = f"baac-crash-{os.getpid()}"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            f"subprocess.Popen([{str(DBT_WITH_PARENT)!r}, 'build', '--profiles-dir', '.', "
            f"'--target-path', {str(tmp_path / 'target')!r}, '--vars', '{{crash_marker: {marker}}}']); "
            "time.sleep(60)",
        ],
        cwd=settings.DBT_PROJECT_DIR,
        env={**os.environ, "DUCKDB_PATH": str(tmp_path / "w.duckdb"), "BAAC_DBT": settings.dbt_executable()},
    )

    def dbt_processes() -> list[int]:
        return [pid for pid in processes_running(marker) if pid != parent.pid]  # its code names the marker

    deadline = time.monotonic() + 60
    while not dbt_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dbt_processes(), "dbt did not start"
    time.sleep(2)  # dbt is building by now
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 3  # `dbt build` on the sample takes far longer
    while dbt_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dbt_processes() == []


def run_pipeline_until(env: dict[str, str], kill_when) -> tuple[bool, str]:
    """`python -m orchestration.pipeline` in its own process group, killed -9 (with its dbt)
    as soon as ``kill_when(output so far)`` holds; (killed, output)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.pipeline"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    killed = False
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if kill_when("".join(lines)):
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    reader.join(timeout=10)
    return killed, "".join(lines)


def test_killed_in_ingestion_dbt_and_mlflow_logging_the_next_run_ends_exact(tmp_path):
    """kill -9 of `make run`'s process at three stages in a row, each run starting from what
    the previous one left: while a raw table loads, while `dbt build` writes, while the model
    is being logged to MLflow. The fourth run completes with the sample's exact counts (no row
    lost or doubled), says what it cleaned, and its champion loads."""
    import duckdb
    from mlflow import MlflowClient

    from ml import registry
    from tests.conftest import SAMPLE_DIR

    artifacts = tmp_path / "artifacts"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ARTIFACT_ROOT": str(artifacts),
        "BAAC_SOURCE": "local",
        "BAAC_LOCAL_DIR": str(SAMPLE_DIR),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "PYTHONUNBUFFERED": "1",
    }
    (tmp_path / "dagster_home").mkdir()
    stages = {
        "loading a raw table": lambda out: "raw__places - Loading places" in out,
        "dbt build writing": lambda out: (
            "Running dbt command" in out and bool(processes_running("dbt build"))
        ),
        # The run's first artifact is written: the run is open and the models come next.
        "logging to MLflow": lambda out: any(artifacts.rglob("data/summary.json")),
    }
    for stage, reached in stages.items():
        killed, output = run_pipeline_until(env, reached)
        assert killed, f"the run ended before {stage}:\n{output[-3000:]}"

    killed, output = run_pipeline_until(env, lambda _: False)
    assert not killed and "Model version" in output, output[-3000:]
    assert "left RUNNING by a crash: marked FAILED" in output
    # The third run's dbt parse was kept (orchestration/dbt_parse_cache.py): no second parse.
    assert "Unable to do partial parsing" not in output
    with duckdb.connect(env["DUCKDB_PATH"], read_only=True) as conn:
        counts = {
            table: conn.execute(f"select count(*) from {table}").fetchone()[0]
            for table in (
                "raw.caracteristics",
                "raw.places",
                "raw.vehicles",
                "raw.users",
                "raw.holidays",
                "marts.fct_road_users",
            )
        }
    assert counts == {
        "raw.caracteristics": 2237,
        "raw.places": 2237,
        "raw.vehicles": 3640,
        "raw.users": 4998,
        "raw.holidays": 132,
        "marts.fct_road_users": 4998,
    }
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT).experiment_id
    assert client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
    versions = client.search_model_versions(f"name = '{registry.REGISTERED_MODEL}'")
    assert versions and all("trained_at" in v.tags for v in versions)
    registry.configure_tracking(tracking_uri)
    champion = registry.alias_version(client, registry.CHAMPION)
    assert registry.load_version(champion) is not None
