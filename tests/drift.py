"""A prediction log written by hand, with a known shift, for the drift models' tests.

The rows go through the service's own writer (``format_rows`` and ``PredictionLog``, as
/predict logs them) into CSV files of past days, aged so that compaction takes them: the
monitoring job's ``prediction_log`` asset then compacts them into the Parquet files dbt reads.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from api.prediction_log import PredictionLog, day_directory, format_rows, new_request_id
from ml.features import FeatureSpec

#: Two closed days: the first logs the train rows as they are, the second the same rows at 03:00.
UNCHANGED_DAY = date(2026, 11, 1)
SHIFTED_DAY = date(2026, 11, 2)
SHIFTED_HOUR = 3
MODEL_VERSION = "1"
PSI_EPSILON = 1e-4
DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def feature_matrix(rows: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The features as the service logs them: floats, NaN for "not recorded"."""
    return rows[spec.names].astype("float64").to_numpy()


def write_prediction_log(
    directory, spec: FeatureSpec, days: dict[date, pd.DataFrame], labels: list[str]
) -> None:
    """Log each day's rows (one request per day, the row's own severity as the prediction),
    then age the files past compaction's quiet minute."""
    log = PredictionLog(directory)
    try:
        for day, rows in days.items():
            inputs = feature_matrix(rows, spec)
            severities = rows[spec.target].to_numpy(dtype="int64")
            probabilities = np.eye(len(labels))[severities - 1]
            logged_at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            header, lines = format_rows(
                logged_at, new_request_id(), spec.names, inputs, severities, labels, probabilities,
                "road_accident_severity", MODEL_VERSION,
            )  # fmt: skip
            log.append(day, header, lines)
    finally:
        log.close()
    two_hours_ago = time.time() - 7200
    for day in days:
        for path in day_directory(directory, day).iterdir():
            os.utime(path, (two_hours_ago, two_hours_ago))


def psi_by_hand(reference: np.ndarray, compared: np.ndarray, categorical: bool) -> float:
    """The PSI as the drift models' YAML defines it, in NumPy: bins are the reference's
    distinct deciles (DuckDB's quantile_disc is NumPy's inverted_cdf) or the codes; NULL
    (NaN) is a bin; shares below epsilon are raised to it."""

    def bins(values: np.ndarray) -> np.ndarray:
        if categorical:
            return np.where(np.isnan(values), -1.0, values)
        known = reference[~np.isnan(reference)]
        edges = np.unique(np.quantile(known, DECILES, method="inverted_cdf"))
        return np.where(np.isnan(values), -1.0, np.searchsorted(edges, values, side="right"))

    reference_bins, compared_bins = bins(reference), bins(compared)
    psi = 0.0
    for b in np.union1d(reference_bins, compared_bins):
        e = max(np.mean(reference_bins == b), PSI_EPSILON)
        a = max(np.mean(compared_bins == b), PSI_EPSILON)
        psi += (a - e) * np.log(a / e)
    return psi
