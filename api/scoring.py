"""Scoring validated road users: pure functions, no HTTP, no logging, no metrics.

A request is encoded once into one float array (``None``, "not recorded", becomes NaN) and
scored on it by ``ml.scoring.score_road_users``, the path evaluation uses too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel

from api.schemas import Prediction
from ml.features import FeatureSpec
from ml.scoring import score_road_users


def encode_road_users(road_users: Sequence[BaseModel], spec: FeatureSpec) -> pd.DataFrame:
    """One row per road user, one float column per feature in specification order."""
    names = spec.names
    values = np.array([[getattr(user, name) for name in names] for user in road_users], dtype="float64")
    return pd.DataFrame(values.reshape(len(road_users), len(names)), columns=names)


def predict_severity(estimator, inputs: pd.DataFrame, spec: FeatureSpec) -> list[Prediction]:
    """The predicted class, each class's probability (by label) and P(severe) of each row."""
    scores = score_road_users(estimator, inputs, spec)
    labels = [spec.classes[code] for code in scores.classes]
    return [
        Prediction(
            severity=int(code),
            label=spec.classes[int(code)],
            probabilities=dict(zip(labels, map(float, row), strict=True)),
            severe_probability=float(severe),
        )
        for code, row, severe in zip(scores.predicted, scores.probabilities, scores.severe, strict=True)
    ]
