"""The service's settings: one object, read from the environment once, with working defaults.

Tests build ``ApiSettings(...)`` directly; ``uvicorn api.main:app`` reads the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ml.defaults import (
    DATA_DIR,
    DBT_PROJECT_DIR,
    mlflow_tracking_uri,
    monitoring_dir,
    path_from_env,
    prediction_log_dir,
)


def api_workers() -> int:
    """The worker processes ``make serve`` starts (``BAAC_API_WORKERS``, default 1): uvicorn's
    ``--workers``. A bad value is an error naming the variable."""
    value = os.environ.get("BAAC_API_WORKERS") or "1"  # empty: the default, as in the Makefile
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(f"BAAC_API_WORKERS must be a whole number of at least 1, not {value!r}")
    return workers


def api_metrics_dir() -> Path:
    """Where several workers keep their Prometheus metrics (``BAAC_API_METRICS_DIR``, default
    data/api_metrics): one sub-folder per running server, see ``api.workers``. Read before
    anything else of the service is imported, hence a function and not a settings field."""
    return path_from_env("BAAC_API_METRICS_DIR", DATA_DIR / "api_metrics")


@dataclass(frozen=True)
class ApiSettings:
    #: The MLflow tracking store and registry the champion is loaded from.
    tracking_uri: str
    #: When set, /predict and /model/reload need it in the ``X-API-Key`` header.
    api_key: str | None = field(default=None, repr=False)  # a secret: never in a log line
    #: How often to look for a new champion; 0 = only on /model/reload.
    refresh_seconds: float = 60.0
    #: Where every prediction is appended (CSV per process and day, compacted to Parquet) before
    #: it is answered.
    prediction_log_dir: Path = DATA_DIR / "predictions"
    #: The drift models' Parquet files (dbt, materialized external) the /monitoring page reads.
    monitoring_dir: Path = DATA_DIR / "monitoring"
    #: Group commit: at most one write + fsync of the prediction log per this many ms.
    prediction_log_commit_ms: float = 2.0
    #: Each call to the MLflow registry gives up after this many seconds (and is not retried),
    #: unless ``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` say otherwise.
    registry_timeout_seconds: int = 5
    #: Largest request body accepted (413 beyond), counted as it arrives whatever
    #: Content-Length says. 16 MiB: a 10,000-user batch is about 8.9 MB of JSON (10.5 MB indented).
    max_body_bytes: int = 16 * 1024 * 1024
    #: Reasons given per road user by ``/predict?explain=true`` unless the request says ``top``.
    explain_top: int = 5
    #: Largest batch ``/predict?explain=true`` explains (each road user costs a model call over up
    #: to features + 1 rows: 10,000 took ~20 s of a worker); larger ones get a 422 saying so.
    explain_max_batch: int = 1_000
    #: The dbt project whose feature specification the request models are generated from.
    dbt_project_dir: Path = DBT_PROJECT_DIR
    #: Worker processes behind the port (uvicorn's ``--workers``, which the launcher passes):
    #: each loads the champion, watches for a new one and logs to its own file (``api.workers``).
    workers: int = 1

    @classmethod
    def from_env(cls) -> ApiSettings:
        """``MLFLOW_TRACKING_URI``, ``BAAC_API_KEY`` (unset or empty: open),
        ``BAAC_MODEL_REFRESH_SECONDS`` (60), ``BAAC_PREDICTION_LOG_DIR`` (data/predictions),
        ``BAAC_MONITORING_DIR`` (data/monitoring), ``BAAC_PREDICTION_LOG_COMMIT_MS`` (2),
        ``BAAC_REGISTRY_TIMEOUT_SECONDS`` (5), ``BAAC_API_MAX_BODY_BYTES`` (16777216),
        ``BAAC_EXPLAIN_TOP`` (5), ``BAAC_EXPLAIN_MAX_BATCH`` (1000), ``BAAC_API_WORKERS`` (1)."""
        return cls(
            tracking_uri=mlflow_tracking_uri(),
            api_key=os.environ.get("BAAC_API_KEY") or None,
            refresh_seconds=float(os.environ.get("BAAC_MODEL_REFRESH_SECONDS", "60")),
            prediction_log_dir=prediction_log_dir(),
            monitoring_dir=monitoring_dir(),
            prediction_log_commit_ms=float(os.environ.get("BAAC_PREDICTION_LOG_COMMIT_MS", "2")),
            registry_timeout_seconds=int(os.environ.get("BAAC_REGISTRY_TIMEOUT_SECONDS", "5")),
            max_body_bytes=int(os.environ.get("BAAC_API_MAX_BODY_BYTES", str(16 * 1024 * 1024))),
            explain_top=int(os.environ.get("BAAC_EXPLAIN_TOP", "5")),
            explain_max_batch=int(os.environ.get("BAAC_EXPLAIN_MAX_BATCH", "1000")),
            workers=api_workers(),
        )
