"""Grouped cross-validation: how much the model's figures move from one set of accidents to
another, beside the single train/validation/test split.

Folds are made of whole accidents (``StratifiedGroupKFold``: no accident is split between
fitting and scoring, as in the dbt split) over train + validation; test is never read. Each
fold is trained as the final model is (``ml.models.fit_severity_model``): the next fold is its
validation split, which early stopping watches and which chooses the iterations kept, and it
learns from the other folds. With 5 folds that is one accident in four of the fitting ones,
as the dbt split's validation (20%) is of train + validation (80%). So the cross-validation
measures the training procedure on folds of this size (the README gives the history:
refitting the final model's iterations overfit national folds, and drawing each fold's
validation split again by a second ``StratifiedGroupKFold`` cost 1.7 s a fold). At national
scale the folds are drawn from a capped subsample of whole accidents, as model selection
caps its rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline

from ml import metrics
from ml.calibration import uncalibrated
from ml.features import FeatureSpec
from ml.models import fit_severity_model
from ml.scoring import class_probabilities
from ml.threads import fit_side_by_side

#: The figures compared across folds.
CV_METRICS = ("macro_f1", "severe_roc_auc")


@dataclass(frozen=True)
class CrossValidation:
    #: One dict per fold: metric -> value on the fold's held-out accidents.
    folds: list[dict[str, float]]
    rows: int  # road users cross-validated (train + validation, capped)
    accidents: int
    seconds: float

    def summary(self) -> dict[str, float]:
        """``cv_<metric>_mean`` and ``cv_<metric>_std`` (sample std over folds)."""
        out = {}
        for metric in CV_METRICS:
            values = np.array([fold[metric] for fold in self.folds])
            out[f"cv_{metric}_mean"] = float(values.mean())
            out[f"cv_{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return out

    def table(self) -> pd.DataFrame:
        """One row per fold: its metrics and the iterations its model kept."""
        return pd.DataFrame(self.folds).rename_axis("fold").reset_index()


def whole_accidents(frame: pd.DataFrame, max_rows: int, key: str, target: str, seed: int) -> pd.DataFrame:
    """At most about ``max_rows`` rows made of whole accidents, drawn within each level of
    the accident's worst outcome (so severe accidents keep their share); all if smaller."""
    if len(frame) <= max_rows:
        return frame
    worst = frame.groupby(key)[target].max()
    chosen = worst.groupby(worst).sample(frac=max_rows / len(frame), random_state=seed).index
    return frame[frame[key].isin(chosen)]


def grouped_folds(groups, target, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of each fold: whole accidents, classes kept in proportion."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    target = np.asarray(target)
    return list(splitter.split(np.zeros(len(target)), target, np.asarray(groups)))


def train_validation_scored(
    held_out: list[np.ndarray], fold: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, scored) rows of ``fold``, from each fold's held-out rows: the fold
    itself is scored, the next one (round the end) is the validation split, the rest train."""
    validation = (fold + 1) % len(held_out)
    train = np.sort(np.concatenate([rows for k, rows in enumerate(held_out) if k not in (fold, validation)]))
    return train, held_out[validation], held_out[fold]


def cross_validate(
    model: Pipeline,
    features: pd.DataFrame,
    spec: FeatureSpec,
    folds: int = 5,
    max_rows: int = 30_000,
    seed: int = 42,
) -> CrossValidation:
    """``folds``-fold cross-validation by accident of ``model``'s configuration (a fitted
    severity pipeline: its parameters, early stopping included) on train + validation,
    capped at ``max_rows`` rows of whole accidents. Each fold's dict holds its
    ``CV_METRICS`` and ``iterations``, those its model kept."""
    if folds < 3:
        raise ValueError(f"cross-validation needs at least 3 folds (scored, validation, train), not {folds}")
    started = time.perf_counter()
    rows = features[features[spec.split].isin(["train", "validation"])]
    rows = whole_accidents(rows, max_rows, spec.key, spec.target, seed).reset_index(drop=True)
    # A calibrated model: the pipeline's configuration (its map needs a validation split).
    configuration = clone(uncalibrated(model))
    classes = sorted(spec.classes)
    held_out = [scored for _, scored in grouped_folds(rows[spec.key], rows[spec.target], folds, seed)]

    def fit_and_score(fold: int) -> dict[str, float]:
        train, validation, scored = (rows.iloc[part] for part in train_validation_scored(held_out, fold))
        fold_model = fit_severity_model(clone(configuration), train, validation, spec).pipeline
        proba = class_probabilities(fold_model, scored[spec.names], classes)
        result = metrics.classification_metrics(scored[spec.target], proba, classes)
        kept = int(fold_model.named_steps["model"].n_iter_)
        return {**{name: result[name] for name in CV_METRICS}, "iterations": kept}

    # Folds of national size run side by side (ml.threads).
    scores = fit_side_by_side(fit_and_score, range(folds), len(rows))
    return CrossValidation(
        folds=scores,
        rows=len(rows),
        accidents=int(rows[spec.key].nunique()),
        seconds=time.perf_counter() - started,
    )
