"""What the /monitoring page shows, read from the drift models' Parquet files.

dbt writes them (materialized external) under ``BAAC_MONITORING_DIR``; the service reads the
files, never the warehouse, which DuckDB locks while a build writes it. dbt replaces a file
through a temporary one, so a reader sees the old file or the new one. A model that has no
rows is written as a single all-NULL row (dbt-duckdb's way of keeping the columns): it is
read as no rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: The dbt models (dbt_project/models/monitoring) whose files the page reads, and the column
#: each file's rows always have.
DRIFT_BY_DAY = "drift_requests_by_day"
PREDICTION_MIX = "prediction_mix_by_day"
DRIFT_NEWEST_YEAR = "drift_newest_year"
KEY_COLUMNS = {DRIFT_BY_DAY: "logged_on", PREDICTION_MIX: "logged_on", DRIFT_NEWEST_YEAR: "newest_year"}


class MonitoringDataError(RuntimeError):
    """A monitoring file exists but cannot be read (named in the message)."""


def read_model_rows(directory: Path, model: str) -> list[dict[str, Any]] | None:
    """The rows of a monitoring model's file; None when the file is not there (not built yet)."""
    path = Path(directory) / f"{model}.parquet"
    if not path.exists():
        return None
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as error:
        raise MonitoringDataError(f"{path} could not be read: {error}") from error
    key = KEY_COLUMNS[model]
    return [row for row in rows if row.get(key) is not None]


@dataclass
class MonitoringData:
    drift_by_day: list[dict[str, Any]] = field(default_factory=list)
    prediction_mix: list[dict[str, Any]] = field(default_factory=list)
    newest_year_drift: list[dict[str, Any]] = field(default_factory=list)
    #: Why a part is empty, in words for the page.
    notes: list[str] = field(default_factory=list)

    @property
    def alert_threshold(self) -> float | None:
        for row in [*self.drift_by_day, *self.newest_year_drift]:
            return row["alert_threshold"]
        return None


def read_monitoring(directory: Path, model_version: str | None = None) -> MonitoringData:
    """Everything the page shows but the champion history; ``model_version`` keeps that
    version's predictions in the mix. Missing files or empty models become notes."""
    data = MonitoringData()
    files = {model: read_model_rows(directory, model) for model in KEY_COLUMNS}
    if all(rows is None for rows in files.values()):
        data.notes.append(
            f"No monitoring data yet in {directory}: the drift models have not been built "
            "(make run, or the monitoring job in the Dagster UI)."
        )
        return data
    data.drift_by_day = files[DRIFT_BY_DAY] or []
    data.newest_year_drift = files[DRIFT_NEWEST_YEAR] or []
    mix = files[PREDICTION_MIX] or []
    data.prediction_mix = [r for r in mix if model_version is None or r["model_version"] == model_version]
    if not data.drift_by_day:
        data.notes.append(
            "The prediction log has no closed day yet: requests are compared with the training "
            "rows once their day is over and compacted (the daily monitoring job)."
        )
    elif model_version is not None and not data.prediction_mix:
        data.notes.append(f"Model version {model_version} has scored no request in the closed days.")
    if files[DRIFT_NEWEST_YEAR] is not None and not data.newest_year_drift:
        data.notes.append(
            "A single accident year is loaded: there is no earlier year to compare the newest with."
        )
    return data
