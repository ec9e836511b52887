"""Crashes leave no debris: a killed pipeline takes its dbt with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
