"""Where the project's files live by default: the bottom layer that every package reads.

Standard library only, and nothing here does any work: ``ml`` functions take paths and URIs
as arguments; ``orchestration`` (Dagster) and ``api`` (the service) read their defaults from
here, each overridden by an environment variable, so that everything runs embedded under
``data/`` unless told otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
#: The French public holidays (the Kaggle file): every source loads ``raw.holidays`` from it,
#: and the scoring page derives its holiday flags from it.
HOLIDAYS_FILE = "holidays.csv"


def path_from_env(name: str, default: Path) -> Path:
    """The path in environment variable ``name``, else ``default``."""
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def local_source_dir() -> Path:
    """A directory in the Kaggle layout (``BAAC_LOCAL_DIR``); the shipped sample by default."""
    return path_from_env("BAAC_LOCAL_DIR", DATA_DIR / "sample")


def prediction_log_dir() -> Path:
    """Where the API appends every prediction (``BAAC_PREDICTION_LOG_DIR``), which the drift
    models read."""
    return path_from_env("BAAC_PREDICTION_LOG_DIR", DATA_DIR / "predictions")


def monitoring_dir() -> Path:
    """Where the drift models write their Parquet files (``BAAC_MONITORING_DIR``), which the
    API's /monitoring page reads without opening the warehouse."""
    return path_from_env("BAAC_MONITORING_DIR", DATA_DIR / "monitoring")


def mlflow_tracking_uri() -> str:
    """MLflow tracking store and registry (``MLFLOW_TRACKING_URI``); an embedded SQLite store
    under data/ by default, never MLflow's own default (the working directory)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DATA_DIR / 'mlflow' / 'mlflow.db'}"


def mlflow_artifact_root() -> Path:
    """Where the embedded MLflow store keeps artifacts (``MLFLOW_ARTIFACT_ROOT``)."""
    return path_from_env("MLFLOW_ARTIFACT_ROOT", DATA_DIR / "mlflow" / "artifacts")


#: The warehouse kinds ``BAAC_WAREHOUSE`` may name: the embedded DuckDB file (default) or the
#: team profile's PostgreSQL database.
WAREHOUSE_KINDS = ("duckdb", "postgres")
#: The team profile's warehouse database (orchestration/team/postgres.py creates it).
POSTGRES_WAREHOUSE_DATABASE = "baac_warehouse"


def warehouse_kind(environ: Mapping[str, str] = os.environ) -> str:
    """Which warehouse the pipeline, dbt and the ML read use (``BAAC_WAREHOUSE`` in
    ``environ``): ``duckdb`` (default, embedded) or ``postgres`` (the team profile)."""
    kind = (environ.get("BAAC_WAREHOUSE") or "duckdb").strip().lower()
    if kind not in WAREHOUSE_KINDS:
        raise ValueError(f"BAAC_WAREHOUSE must be one of {', '.join(WAREHOUSE_KINDS)}, not {kind!r}")
    return kind


def postgres_settings() -> dict[str, str | int]:
    """The team profile's PostgreSQL connection (``BAAC_PG_HOST``, ``BAAC_PG_PORT``,
    ``BAAC_PG_USER``, ``BAAC_PG_PASSWORD``), as psycopg2/libpq keywords without the database.
    The password has no default: without it this fails naming the variable."""
    password = os.environ.get("BAAC_PG_PASSWORD")
    if not password:
        raise ValueError(
            "BAAC_PG_PASSWORD is not set: the team profile's PostgreSQL needs its password "
            "(make team-up writes it to data/team/team.env)"
        )
    port = os.environ.get("BAAC_PG_PORT") or "55432"
    if not port.isdigit():
        raise ValueError(f"BAAC_PG_PORT must be a port number, not {port!r}")
    return {
        "host": os.environ.get("BAAC_PG_HOST") or "127.0.0.1",
        "port": int(port),
        "user": os.environ.get("BAAC_PG_USER") or "baac",
        "password": password,
    }
