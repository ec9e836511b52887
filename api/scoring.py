"""Scoring validated road users: pure functions, no HTTP, no logging, no metrics.

A request is encoded once into one float array (rows x features in specification order;
``None``, "not recorded", becomes NaN) and scored on it by ``ml.scoring.score_road_users``
with the champion compiled for arrays (``ml.array_model``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from ml.explain import explain_rows, top_reasons
from ml.features import FeatureSpec
from ml.scoring import Scores, score_road_users

#: Road users converted per step (see ``encode_road_users``).
ENCODE_SLICE = 500


def encode_road_users(road_users: Sequence[BaseModel], spec: FeatureSpec) -> np.ndarray:
    """One row per road user, one float column per feature in specification order.

    The request models declare the features in that order, so each model's fields are read
    in one pass (``None`` becomes NaN in a float array)."""
    names = spec.names
    out = np.empty((len(road_users), len(names)), dtype=np.float64)
    in_order = not road_users or list(type(road_users[0]).model_fields) == names
    # In slices: one conversion of 10,000 rows would hold the GIL (the event loop) throughout.
    for start in range(0, len(road_users), ENCODE_SLICE):
        users = road_users[start : start + ENCODE_SLICE]
        if in_order:
            rows = [list(user.__dict__.values()) for user in users]
        else:
            rows = [[getattr(user, name) for name in names] for user in users]
        out[start : start + len(users)] = np.array(rows, dtype=np.float64).reshape(len(users), len(names))
    return out


def predict_severity(model, inputs: np.ndarray, spec: FeatureSpec) -> Scores:
    """The probabilities, predicted class and P(severe) of each row of ``inputs``."""
    return score_road_users(model, inputs, spec)


def prediction_dicts(scores: Scores, spec: FeatureSpec) -> list[dict[str, Any]]:
    """The ``Prediction`` of each row as plain data (what the JSON answer holds)."""
    labels = [spec.classes[code] for code in scores.classes]
    return [
        {
            "severity": code,
            "label": spec.classes[code],
            "probabilities": dict(zip(labels, row, strict=True)),
            "severe_probability": severe,
        }
        for code, row, severe in zip(
            scores.predicted.tolist(), scores.probabilities.tolist(), scores.severe.tolist(), strict=True
        )
    ]


def explanation_dicts(
    scorer, reference: np.ndarray, inputs: np.ndarray, spec: FeatureSpec, top: int
) -> list[dict[str, Any]]:
    """The ``Explanation`` of each row of ``inputs`` as plain data: its ``top`` reasons
    against ``reference`` (``ml.explain``; one batched scoring per road user)."""
    explanations = explain_rows(scorer, inputs, reference, spec.names, sorted(spec.classes))
    interactions = explanations.interactions.tolist()
    return [
        {
            "reference_severe_probability": explanations.reference_severe,
            "interactions": interactions[row],
            "reasons": top_reasons(explanations, row, inputs, spec, top),
        }
        for row in range(len(inputs))
    ]
