"""Training the severity model and its baselines: pure functions of frames."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ml.calibration import calibrate_on_validation
from ml.contracts import MODEL, PREVIOUS_FEATURE_SET, SeverityModelParams, TrainingPlan
from ml.data import baseline_columns, split_frame
from ml.features import FeatureSpec
from ml.models import (
    build_legacy_baseline,
    build_majority_baseline,
    build_severity_model,
    fit_severity_model,
)
from ml.threads import fit_side_by_side


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
    #: The kept model's parameters fit without the newest feature set, on the same rows;
    #: None when the specification has a single feature set.
    previous_feature_set_model: Pipeline | None = None
    #: Validation macro-F1 of the kept model and of the previous feature set's, on the rows
    #: their early stopping watched: the comparison that may choose between them.
    validation_macro_f1: dict[str, float] = field(default_factory=dict)


def stratified_rows(frame: pd.DataFrame, rows: int, target: str, random_state: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, each class keeping its share; all of it if smaller."""
    if len(frame) <= rows:
        return frame
    share = rows / len(frame)
    return frame.groupby(target, group_keys=False).sample(frac=share, random_state=random_state).sort_index()


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
    ``plan.final_fit_rows`` train rows if that is more than it saw; fit the same parameters
    without the newest feature set on the same rows, and both baselines on `train`. `test`
    is not read."""
    train, validation = split_frame(features, "train"), split_frame(features, "validation")
    selection_train = stratified_rows(train, plan.selection_rows, spec.target, params.random_state)
    selection_validation = stratified_rows(validation, plan.selection_rows, spec.target, params.random_state)
    selection, best = {}, None
    candidates = [replace(params, max_leaf_nodes=leaves) for leaves in plan.max_leaf_nodes_candidates]
    fitted_candidates = fit_side_by_side(
        lambda candidate_params: fit_severity_model(
            build_severity_model(spec, candidate_params), selection_train, selection_validation, spec
        ),
        candidates,
        len(selection_train),
    )
    for candidate_params, (candidate, score) in zip(candidates, fitted_candidates, strict=True):
        leaves = candidate_params.max_leaf_nodes
        selection[leaves] = score
        log(
            f"max_leaf_nodes={leaves}: validation macro-F1 {score:.4f} at its best iteration, "
            f"{candidate.named_steps['model'].n_iter_} ({len(selection_train):,} train rows)"
        )
        if best is None or score > best[0]:
            best = (score, candidate, candidate_params)
    model_macro_f1, model, best_params = best
    fit_train, fit_validation = selection_train, selection_validation
    final_train = stratified_rows(train, plan.final_fit_rows, spec.target, params.random_state)
    refit = len(final_train) > len(selection_train)
    if refit:
        fit_train = final_train
        fit_validation = stratified_rows(validation, plan.final_fit_rows, spec.target, params.random_state)
        log(
            f"Refitting max_leaf_nodes={best_params.max_leaf_nodes} on {len(final_train):,} of "
            f"{len(train):,} train rows"
        )
    fits = [spec] if refit else []
    previous_spec = spec.previous_feature_set()
    if previous_spec is not None:
        log(
            f"Fitting max_leaf_nodes={best_params.max_leaf_nodes} without feature set {spec.feature_set} "
            f"({len(previous_spec.names)} of {len(spec.names)} features) on the same {len(fit_train):,} rows"
        )
        fits.append(previous_spec)
    started = time.perf_counter()
    fitted = fit_side_by_side(
        lambda fit_spec: fit_severity_model(
            build_severity_model(fit_spec, best_params), fit_train, fit_validation, fit_spec
        ),
        fits,
        len(fit_train),
    )
    if len(fits) > 1:
        log(f"{len(fits)} fits on {len(fit_train):,} rows in {time.perf_counter() - started:.1f} s")
    if refit:
        model, model_macro_f1 = fitted.pop(0)
    scores = {MODEL: model_macro_f1}
    previous_model = None
    if previous_spec is not None:
        previous_model, scores[PREVIOUS_FEATURE_SET] = fitted.pop(0)
    # The feature sets are compared uncalibrated (alike); the kept model is then calibrated.
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
    # Fitted on every core, it predicts with n_jobs=1: a forest sums its trees' probabilities in
    # the order its threads finish, so its metrics would differ in the last digits from run to
    # run. Scoring splits the rows over the cores instead (ml.scoring, ml.threads).
    legacy.set_params(n_jobs=1)
    majority = build_majority_baseline().fit(baseline_train[columns], baseline_train["severity"])
    return TrainedModels(
        model=model,
        legacy_baseline=legacy,
        majority_baseline=majority,
        params=best_params,
        selection=selection,
        best_iteration=int(model.named_steps["model"].n_iter_),
        fit_rows=len(fit_train),
        calibration=calibration,
        previous_feature_set_model=previous_model,
        validation_macro_f1=scores,
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
