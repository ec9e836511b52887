"""Every prediction, appended to Parquet files outside the warehouse for drift analysis.

One file per request under ``<dir>/date=YYYY-MM-DD/``: append-only, safe with several
workers, and readable as one table (``read_parquet('data/predictions/**/*.parquet')``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd


def write_prediction_log(
    directory: Path,
    inputs: pd.DataFrame,
    severities: list[int],
    probabilities: list[dict[str, float]],
    model_name: str,
    model_version: str,
) -> Path:
    now = datetime.now(UTC)
    request_id = uuid.uuid4().hex
    frame = inputs.reset_index(drop=True).copy()
    frame.insert(0, "logged_at", pd.Timestamp(now))
    frame.insert(1, "request_id", request_id)
    frame["model_name"] = model_name
    frame["model_version"] = model_version
    frame["predicted_severity"] = severities
    for label in probabilities[0]:
        frame[f"p_{label.replace(' ', '_')}"] = [p[label] for p in probabilities]
    path = directory / f"date={now:%Y-%m-%d}" / f"{now:%H%M%S}-{request_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path
