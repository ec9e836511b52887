"""A fitted calibration map applied to class probabilities: plain arrays, nothing fitted here.

``ml.calibration`` fits the maps (with scikit-learn) and ``ProbabilityCalibration`` is this
class with its ``fit``; the API applies a champion's map from its compiled file
(``ml.compiled_model``) without importing scikit-learn.
"""

from __future__ import annotations

import numpy as np

_CLIP = 1e-12


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _CLIP, 1 - _CLIP)
    return np.log(p / (1 - p))


class CalibrationMap:
    """A calibration map of class probabilities (columns in the model's class order):
    ``sigmoid`` (a slope and an intercept per class, on the log-odds) or ``isotonic``
    (knots per class), one class against the rest, then renormalised."""

    def __init__(self, method: str, slopes=None, intercepts=None, knots_x=None, knots_y=None):
        self.method = method
        self.slopes, self.intercepts = slopes, intercepts  # sigmoid: one per class
        self.knots_x, self.knots_y = knots_x, knots_y  # isotonic: arrays per class

    def transform(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=np.float64)
        if self.method == "sigmoid":
            calibrated = 1 / (1 + np.exp(-(self.slopes * log_odds(proba) + self.intercepts)))
        else:  # isotonic: linear between knots, flat outside (IsotonicRegression's "clip")
            calibrated = np.column_stack(
                [
                    np.interp(proba[:, j], x, y)
                    for j, (x, y) in enumerate(zip(self.knots_x, self.knots_y, strict=True))
                ]
            )
        total = calibrated.sum(axis=1, keepdims=True)
        # Every class mapped to 0 (possible with isotonic): nothing is known, say so evenly.
        return np.where(total > 0, calibrated / np.where(total > 0, total, 1), 1 / calibrated.shape[1])
