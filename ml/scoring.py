"""Scoring road users with a trained model: the path the API serves, and evaluation reuses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.features import FeatureSpec
from ml.metrics import predicted_classes, severe_probability
from ml.threads import predict_in_row_blocks


def model_input(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The feature columns in specification order, as floats (a missing value is NaN):
    one dtype whatever the source (DuckDB, JSON), so the MLflow signature always matches."""
    return frame[spec.names].astype("float64")


def class_probabilities(estimator, X: pd.DataFrame | np.ndarray, classes: list[int]) -> np.ndarray:
    """Probabilities with one column per class in ``classes`` order, whatever classes the
    estimator saw (a baseline that never saw a class gives it 0). OpenMP threads as
    ``ml.threads`` decides for this many rows.

    A severity model given a DataFrame is compiled first (``ml.array_model``): the same
    probabilities to the last bit, which is what calibration on validation and the
    evaluation read."""
    if isinstance(X, pd.DataFrame) and not getattr(estimator, "manages_threads", False):
        # Imported here: the API scores with compiled models only and never loads scikit-learn.
        from ml.array_model import CompiledBoosting, compile_model

        compiled = compile_model(estimator, list(X.columns))
        if isinstance(compiled, CompiledBoosting):
            proba = compiled.predict_proba(X.to_numpy(dtype=np.float64))
            return _in_class_order(proba, compiled.classes_, classes)
    if getattr(estimator, "manages_threads", False):  # ml.array_model's compiled models
        proba = estimator.predict_proba(X)
    else:  # a forest, a dummy: blocks of rows on every core (the legacy forest's test split: 5.4 s on one)
        proba = predict_in_row_blocks(estimator.predict_proba, X, len(X))
    return _in_class_order(proba, estimator.classes_, classes)


def _in_class_order(proba: np.ndarray, estimator_classes, classes: list[int]) -> np.ndarray:
    out = np.zeros((len(proba), len(classes)))
    for index, code in enumerate(estimator_classes):
        out[:, classes.index(int(code))] = proba[:, index]
    return out


@dataclass(frozen=True)
class Scores:
    """What a model says of each road user: the row order of its input."""

    classes: list[int]
    probabilities: np.ndarray  # one row per road user, one column per class
    predicted: np.ndarray  # the most probable class
    severe: np.ndarray  # P(hospitalised or killed)


def score_road_users(estimator, road_users: pd.DataFrame | np.ndarray, spec: FeatureSpec) -> Scores:
    """Score road users: a DataFrame with the specification's feature columns, or a float
    array of them in specification order (the API's, for a model from
    ``ml.array_model.compile_model``); NaN = not recorded."""
    classes = sorted(spec.classes)
    X = road_users if isinstance(road_users, np.ndarray) else model_input(road_users, spec)
    proba = class_probabilities(estimator, X, classes)
    return Scores(
        classes=classes,
        probabilities=proba,
        predicted=predicted_classes(proba, classes),
        severe=severe_probability(proba, classes),
    )
