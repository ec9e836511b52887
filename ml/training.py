"""Training the severity model and its baselines: pure functions of frames."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ml import metrics
from ml.calibration import calibrate_on_validation
from ml.data import baseline_columns, split_frame
from ml.features import FeatureSpec
from ml.models import (
    SeverityModelParams,
    build_legacy_baseline,
    build_majority_baseline,
    build_severity_model,
    fit_severity_model,
)
from ml.threads import openmp_threads_for_rows

MODEL = "severity_model"
LEGACY_BASELINE = "legacy_random_forest"
MAJORITY_BASELINE = "majority_class"


@dataclass(frozen=True)
class TrainingPlan:
    """How much work training does, beyond the model's hyper-parameters."""

    #: max_leaf_nodes values tried; the best by validation macro-F1 is kept.
    max_leaf_nodes_candidates: tuple[int, ...] = (15, 31, 63)
    #: Candidates are compared on at most this many train rows (and as many validation
    #: rows), stratified by severity. The choice among three tree sizes does not need every
    #: row, and each candidate costs rows x iterations. Smaller data is used whole.
    selection_rows: int = 30_000
    #: The chosen candidate is refit on at most this many train rows (stratified), its early
    #: stopping watching at most as many validation rows. On the national-size data set a
    #: fit on 200,000 rows had the same test macro-F1 as one on 50,000 (0.4279) and a severe
    #: ROC-AUC 0.009 higher, at four times the cost (92 s); the whole of train (1.1 M rows)
    #: would take about 8 minutes on 2 cores. Smaller data is used whole.
    final_fit_rows: int = 150_000
    #: Each tree of the replaced project's random forest sees at most this many rows
    #: (bootstrap), so the baseline stays fair but bounded in time and size.
    legacy_max_samples: int = 50_000
    #: Calibration of the kept model's probabilities on validation (``ml.calibration``):
    #: "auto" (only when it helps, measured by cross-fitting on validation), "none",
    #: "sigmoid" or "isotonic".
    calibration: str = "auto"


@dataclass
class TrainedModels:
    model: Pipeline
    legacy_baseline: object
    majority_baseline: object
    params: SeverityModelParams
    #: max_leaf_nodes candidate -> validation macro-F1 (model selection).
    selection: dict[int, float]
    best_iteration: int
    #: Train rows the kept model was fit on (fewer than train when capped by the plan).
    fit_rows: int
    #: The calibration chosen and its cross-fitted validation figures (ml.calibration).
    calibration: dict = field(default_factory=dict)


def stratified_rows(frame: pd.DataFrame, rows: int, target: str, random_state: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, each class keeping its share; all of it if smaller."""
    if len(frame) <= rows:
        return frame
    share = rows / len(frame)
    return frame.groupby(target, group_keys=False).sample(frac=share, random_state=random_state).sort_index()


def fit_with_threads(model: Pipeline, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec):
    """``fit_severity_model`` on as many OpenMP threads as ``ml.threads`` gives a fit of this size."""
    with openmp_threads_for_rows(len(train), training=True):
        return fit_severity_model(model, train, validation, spec)


def train_models(
    features: pd.DataFrame,
    baseline_features: pd.DataFrame,
    spec: FeatureSpec,
    params: SeverityModelParams,
    plan: TrainingPlan = TrainingPlan(),
    log=print,
) -> TrainedModels:
    """Fit each candidate on `train` with early stopping on `validation` (both capped at
    ``plan.selection_rows``), keep the best by validation macro-F1 and refit it on up to
    ``plan.final_fit_rows`` train rows if that is more than it saw; fit both baselines on
    `train`. `test` is not read."""
    train, validation = split_frame(features, "train"), split_frame(features, "validation")
    classes = sorted(spec.classes)
    selection_train = stratified_rows(train, plan.selection_rows, spec.target, params.random_state)
    selection_validation = stratified_rows(validation, plan.selection_rows, spec.target, params.random_state)
    selection, best = {}, None
    for leaves in plan.max_leaf_nodes_candidates:
        candidate_params = replace(params, max_leaf_nodes=leaves)
        candidate = fit_with_threads(
            build_severity_model(spec, candidate_params), selection_train, selection_validation, spec
        )
        proba = candidate.predict_proba(selection_validation[spec.names])
        score = metrics.classification_metrics(selection_validation[spec.target], proba, classes)["macro_f1"]
        selection[leaves] = score
        log(
            f"max_leaf_nodes={leaves}: validation macro-F1 {score:.4f} after "
            f"{candidate.named_steps['model'].n_iter_} iterations ({len(selection_train):,} train rows)"
        )
        if best is None or score > best[0]:
            best = (score, candidate, candidate_params)
    _, model, best_params = best
    fit_rows = len(selection_train)
    final_train = stratified_rows(train, plan.final_fit_rows, spec.target, params.random_state)
    if len(final_train) > len(selection_train):
        final_validation = stratified_rows(validation, plan.final_fit_rows, spec.target, params.random_state)
        log(
            f"Refitting max_leaf_nodes={best_params.max_leaf_nodes} on {len(final_train):,} of "
            f"{len(train):,} train rows"
        )
        model = build_severity_model(spec, best_params)
        model = fit_with_threads(model, final_train, final_validation, spec)
        fit_rows = len(final_train)
    model, calibration = calibrate_on_validation(
        model, validation, spec, plan.calibration, params.random_state
    )
    log(f"Calibration on validation: {calibration['method']} (asked: {plan.calibration})")

    baseline_train = split_frame(baseline_features, "train")
    columns = baseline_columns(baseline_features)
    log(f"Fitting the legacy random forest on {len(baseline_train):,} rows")
    legacy = build_legacy_baseline(
        params.random_state, min(plan.legacy_max_samples, len(baseline_train))
    ).fit(baseline_train[columns], baseline_train["severity"])
    # Fitted on every core, it predicts on one: a forest sums its trees' probabilities in the
    # order its threads finish, so its metrics would differ in the last digits from run to run.
    legacy.set_params(n_jobs=1)
    majority = build_majority_baseline().fit(baseline_train[columns], baseline_train["severity"])
    return TrainedModels(
        model=model,
        legacy_baseline=legacy,
        majority_baseline=majority,
        params=best_params,
        selection=selection,
        best_iteration=int(model.named_steps["model"].n_iter_),
        fit_rows=fit_rows,
        calibration=calibration,
    )


def typical_road_user(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, int | float | None]:
    """The most typical real road user of the train split, a starting point for a form.

    Each column's mode taken alone makes a road user nobody is (a driver on a pedestrian
    crossing), so this is a whole row, fully recorded when one is: the one whose values are
    together the most frequent, i.e. the highest sum over features of the log-frequency of
    its value ("not recorded" counting as a value; a coordinate only as recorded or not).
    Ties go to the smallest accident key, then to row order."""
    train = split_frame(features, "train")
    if train.empty:
        return {feature.name: None for feature in spec.features}
    score = pd.Series(0.0, index=train.index)
    for feature in spec.features:
        column = train[feature.name].astype("float64")
        # A code or whole number counts as itself (-1: not recorded); a coordinate, only as
        # recorded or not.
        whole = feature.is_categorical or feature.data_type == "integer"
        column = column.fillna(-1.0) if whole else column.notna().astype("float64")
        score += np.log(column.map(column.value_counts(normalize=True)))
    ranked = train.assign(_score=score, _order=np.arange(len(train)))
    # A form starts best with every field filled in: a fully recorded row when there is one.
    complete = ranked[train[spec.names].notna().all(axis=1)]
    ranked = complete if len(complete) else ranked
    best = ranked.sort_values(["_score", spec.key, "_order"], ascending=[False, True, True]).iloc[0]
    typical: dict[str, int | float | None] = {}
    for feature in spec.features:
        value = best[feature.name]
        if pd.isna(value):
            typical[feature.name] = None
        elif feature.is_categorical or feature.data_type == "integer":
            typical[feature.name] = int(value)
        else:
            typical[feature.name] = float(value)
    return typical
