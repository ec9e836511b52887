"""Calibrated probabilities: a map fitted on the validation split, applied after the model.

The severity model is trained with balanced class weights (every class counts alike, which
is what macro-F1 rewards), so its probabilities are those of a world where the four
outcomes are equally frequent. A calibration map learnt on validation (never on test)
brings them to observed frequencies, one class against the rest then renormalised, as
scikit-learn's ``CalibratedClassifierCV`` does:

* ``sigmoid``: Platt scaling of each class's log-odds (two numbers per class);
* ``isotonic``: a non-decreasing step-line per class (its knots kept as arrays).

``choose_calibration`` decides on validation alone, by cross-fitting: the map is fitted on
one half of the validation accidents and measured on the other, and the other way round.
``auto`` keeps a map only when, so measured, it lowers both expected calibration errors
(top label, severe vs not) without lowering macro-F1, the figure the model is selected and
promoted on; otherwise the model stays as it is and the measurements say why.

The maps are plain arrays, so a calibrated model is stored with skops like the rest, and
``ml.array_model`` compiles it (the booster compiled, then the same map): the API's
probabilities are the scikit-learn object's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from ml.calibration_map import CalibrationMap, log_odds
from ml.metrics import classification_metrics

METHODS = ("sigmoid", "isotonic")
#: TrainingPlan.calibration values: a method, "none", or "auto" (see the module docstring).
CHOICES = ("auto", "none", *METHODS)
#: Figures measured on cross-fitted validation for each candidate.
MEASURED = ("macro_f1", "log_loss", "top_label_ece", "severe_ece")


class ProbabilityCalibration(CalibrationMap):
    """A calibration map of class probabilities (``ml.calibration_map``), fitted here."""

    @classmethod
    def fit(cls, method: str, proba: np.ndarray, y_true, classes) -> ProbabilityCalibration:
        y_true = np.asarray(y_true)
        if method == "sigmoid":
            slopes, intercepts = [], []
            for j, code in enumerate(classes):
                outcome = y_true == code
                if outcome.all() or not outcome.any():  # nothing to learn: keep the log-odds
                    slopes.append(1.0)
                    intercepts.append(0.0)
                    continue
                fitted = LogisticRegression(C=1e6).fit(log_odds(proba[:, j])[:, None], outcome)
                slopes.append(float(fitted.coef_[0, 0]))
                intercepts.append(float(fitted.intercept_[0]))
            return cls(method, slopes=np.array(slopes), intercepts=np.array(intercepts))
        if method == "isotonic":
            knots_x, knots_y = [], []
            for j, code in enumerate(classes):
                fitted = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
                    proba[:, j], y_true == code
                )
                knots_x.append(np.asarray(fitted.X_thresholds_, dtype=np.float64))
                knots_y.append(np.asarray(fitted.y_thresholds_, dtype=np.float64))
            return cls(method, knots_x=knots_x, knots_y=knots_y)
        raise ValueError(f"unknown calibration method {method!r}: expected one of {METHODS}")


class CalibratedSeverityModel(ClassifierMixin, BaseEstimator):
    """The severity pipeline followed by a calibration map of its probabilities."""

    def __init__(self, pipeline=None, calibration: ProbabilityCalibration | None = None):
        self.pipeline = pipeline
        self.calibration = calibration

    @property
    def classes_(self) -> np.ndarray:
        return self.pipeline.classes_

    @property
    def named_steps(self):
        """The pipeline's steps (its booster's ``n_iter_``, its typer), as for a plain model."""
        return self.pipeline.named_steps

    def fit(self, X, y=None):  # fitted in two stages by calibrate_on_validation
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.calibration.transform(self.pipeline.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def uncalibrated(model):
    """The pipeline under a calibration map (the model itself when it has none)."""
    return model.pipeline if isinstance(model, CalibratedSeverityModel) else model


def _halves(accidents: np.ndarray, seed: int) -> np.ndarray:
    """True for the road users of a random half of the accidents."""
    unique = np.unique(accidents)
    chosen = np.random.default_rng(seed).permutation(unique)[: len(unique) // 2]
    return np.isin(accidents, chosen)


def cross_fitted(method: str, proba: np.ndarray, y_true, accidents, classes, seed: int) -> np.ndarray:
    """Validation probabilities, each half calibrated by a map fitted on the other half."""
    y_true = np.asarray(y_true)
    half = _halves(np.asarray(accidents), seed)
    out = np.empty_like(proba)
    for scored in (half, ~half):
        out[scored] = ProbabilityCalibration.fit(method, proba[~scored], y_true[~scored], classes).transform(
            proba[scored]
        )
    return out


def choose_calibration(
    proba: np.ndarray, y_true, accidents, classes, choice: str = "auto", seed: int = 42
) -> tuple[str, dict[str, dict[str, float]]]:
    """The method to use (``none`` or one of METHODS) and, for ``none`` and each method,
    the figures of ``MEASURED`` on cross-fitted validation probabilities."""
    if choice not in CHOICES:
        raise ValueError(f"calibration must be one of {CHOICES}, not {choice!r}")
    candidates = {"none": proba}
    for method in METHODS:
        candidates[method] = cross_fitted(method, proba, y_true, accidents, classes, seed)
    measured = {}
    for name, candidate in candidates.items():
        figures = classification_metrics(y_true, candidate, classes)
        measured[name] = {metric: figures[metric] for metric in MEASURED}
    if choice != "auto":
        return choice, measured
    base = measured["none"]
    helps = [
        method
        for method in METHODS
        if measured[method]["top_label_ece"] < base["top_label_ece"]
        and measured[method]["severe_ece"] < base["severe_ece"]
        and measured[method]["macro_f1"] >= base["macro_f1"]
    ]
    return (min(helps, key=lambda m: measured[m]["log_loss"]) if helps else "none"), measured


def calibrate_on_validation(model, validation: pd.DataFrame, spec, choice: str = "auto", seed: int = 42):
    """``(model, report)``: the model wrapped with a calibration map fitted on the whole of
    ``validation`` when ``choice`` (or, for ``auto``, the cross-fitted measurement) says so,
    else the model itself; ``report`` holds the method and the cross-fitted figures."""
    classes = sorted(spec.classes)
    if validation[spec.key].nunique() < 4:  # too few accidents to cross-fit anything
        return model, {"method": "none", "choice": choice, "cross_fitted_validation": {}}
    # Imported here: ml.scoring compiles models through ml.array_model, which imports this module.
    from ml.scoring import class_probabilities

    if list(model.classes_) != classes:
        raise ValueError(f"calibration needs every class {classes} in training, got {list(model.classes_)}")
    proba = class_probabilities(model, validation[spec.names], classes)
    y, accidents = validation[spec.target].to_numpy(), validation[spec.key].to_numpy()
    method, measured = choose_calibration(proba, y, accidents, classes, choice, seed)
    report = {"method": method, "choice": choice, "cross_fitted_validation": measured}
    if method == "none":
        return model, report
    calibration = ProbabilityCalibration.fit(method, proba, y, classes)
    return CalibratedSeverityModel(model, calibration), report
