"""The orchestrator's settings, read from environment variables with working defaults.

Paths shared with the service and the ML library (project root, data folder, dbt project,
MLflow store) come from ``ml.defaults``; what only the pipeline needs is here.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from ml.defaults import (
    DATA_DIR,
    DBT_PROJECT_DIR,
    PROJECT_ROOT,
    local_source_dir,
    mlflow_artifact_root,
    mlflow_tracking_uri,
    monitoring_dir,
    prediction_log_dir,
    warehouse_kind,
)
from ml.defaults import path_from_env as _path_from_env

__all__ = [
    "DATA_DIR",
    "DBT_PROJECT_DIR",
    "PROJECT_ROOT",
    "local_source_dir",
    "mlflow_artifact_root",
    "mlflow_tracking_uri",
    "monitoring_dir",
    "prediction_log_dir",
]

#: Years the partitioned raw assets cover: Kaggle holds 2005-2016, data.gouv's
#: yearly files in the same layout run to 2018 (2019 onwards changed layout).
FIRST_YEAR = 2005
LAST_YEAR = 2018
ACCIDENT_YEARS = [str(year) for year in range(FIRST_YEAR, LAST_YEAR + 1)]

KAGGLE_DATASET = "ahmedlahlou/accidents-in-france-from-2005-to-2016"


def duckdb_path() -> Path:
    """The DuckDB warehouse file (``DUCKDB_PATH``)."""
    return _path_from_env("DUCKDB_PATH", DATA_DIR / "warehouse.duckdb")


def dbt_target_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where dbt's manifest for Dagster lives, relative to the dbt project: ``target`` for the
    embedded DuckDB warehouse, ``target-team`` for PostgreSQL (``BAAC_WAREHOUSE``), whose
    graph has no drift models (they are DuckDB's alone): a manifest parsed for one warehouse is
    never read for the other."""
    return Path("target-team" if warehouse_kind(environ) == "postgres" else "target")


def dbt_parse_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where dbt's parse is kept per profile between runs (orchestration/dbt_parse_cache.py),
    for a dbt run with the environment ``environ``."""
    return DBT_PROJECT_DIR / dbt_target_path(environ) / "partial_parse"


def warehouse_lock_timeout_seconds() -> float:
    """How long to wait for another process to release the warehouse (``BAAC_WAREHOUSE_LOCK_TIMEOUT``)."""
    return float(os.environ.get("BAAC_WAREHOUSE_LOCK_TIMEOUT", "120"))


def raw_source_kind() -> str:
    """Where raw CSVs come from (``BAAC_SOURCE``): ``local``, ``kaggle`` or ``datagouv``."""
    return os.environ.get("BAAC_SOURCE", "local")


def datagouv_manifest_path() -> Path:
    """The YAML file listing the data.gouv.fr yearly files (``BAAC_DATAGOUV_MANIFEST``)."""
    return _path_from_env("BAAC_DATAGOUV_MANIFEST", PROJECT_ROOT / "orchestration" / "datagouv.yml")


def download_cache_dir() -> Path:
    """Where downloaded files are cached (``BAAC_DOWNLOAD_DIR``)."""
    return _path_from_env("BAAC_DOWNLOAD_DIR", DATA_DIR / "downloads")


def parse_years(text: str) -> list[str]:
    """Parse one year (``"2016"``) or one range (``"2005-2016"``) into partition keys.

    A run covers one contiguous range of partitions, so lists are not accepted.

    >>> parse_years("2014-2016")
    ['2014', '2015', '2016']
    """
    first, _, last = text.strip().partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise ValueError(f"Expected a year or a range such as 2005-2016, got {text!r}")
    start, end = int(first), int(last or first)
    if start > end:
        raise ValueError(f"Year range {text!r} runs backwards")
    if start < FIRST_YEAR or end > LAST_YEAR:
        raise ValueError(f"Years {text!r} are outside {FIRST_YEAR}-{LAST_YEAR}")
    return [str(y) for y in range(start, end + 1)]


def pipeline_years() -> list[str]:
    """Years ``make run`` loads (``BAAC_YEARS``, default every year; the sample holds 2016)."""
    return parse_years(os.environ.get("BAAC_YEARS", f"{FIRST_YEAR}-{LAST_YEAR}"))


def dbt_executable() -> str:
    """The dbt CLI of this environment: dagster-dbt needs it, and .venv/bin may not be on PATH
    (nor be the folder of ``sys.executable``, which a code server may resolve to the base
    interpreter)."""
    for folder in (
        sysconfig.get_path("scripts"),
        str(Path(sys.prefix) / "bin"),
        str(Path(sys.executable).parent),
    ):
        candidate = Path(folder) / "dbt"
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


def landing_dir() -> Path:
    """Where deliveries of raw files appear, one folder each (``BAAC_LANDING_DIR``); the
    landing sensor watches it (orchestration/sensors.py)."""
    return _path_from_env("BAAC_LANDING_DIR", DATA_DIR / "landing")


def landing_max_rejected_lines() -> int:
    """Lines a delivery may have that the loader would reject (``BAAC_LANDING_MAX_REJECTED``,
    default 0): above it the whole delivery is refused."""
    return int(os.environ.get("BAAC_LANDING_MAX_REJECTED", "0"))


def replay_dir() -> Path:
    """Where `make replay` keeps its own warehouse, MLflow store, Dagster home and landing
    folder (``BAAC_REPLAY_DIR``); emptied at the start of each replay."""
    return _path_from_env("BAAC_REPLAY_DIR", DATA_DIR / "replay")


def replay_deliveries() -> int:
    """How many growing versions `make replay` delivers a one-year source as
    (``REPLAY_DELIVERIES``, default 4: months 1-3, 1-6, 1-9, 1-12)."""
    return int(os.environ.get("REPLAY_DELIVERIES", "4"))


def mlflow_ui_url() -> str:
    """Where the MLflow UI is (``BAAC_MLFLOW_UI_URL``; `make mlflow` serves it there), for
    links from the Dagster UI to runs."""
    return os.environ.get("BAAC_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


def monitoring_cron() -> str:
    """When the daily schedule rebuilds the drift models (``BAAC_MONITORING_CRON``, UTC):
    00:15, once yesterday's prediction log can be compacted."""
    return os.environ.get("BAAC_MONITORING_CRON", "15 0 * * *")


def stores_in(root: Path) -> dict[str, str]:
    """The environment that puts a run's warehouse, MLflow store, drift files and prediction
    log under ``root``, none of them the project's (the replay and the benchmarks run so)."""
    return {
        "DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": str(root / "mlflow-artifacts"),
        "BAAC_MONITORING_DIR": str(root / "monitoring"),
        "BAAC_PREDICTION_LOG_DIR": str(root / "predictions"),
    }
