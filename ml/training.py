"""Training the severity model and its baselines: pure functions of frames."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from sklearn.pipeline import Pipeline

from ml import metrics
from ml.data import baseline_columns, split_frame
from ml.features import FeatureSpec
from ml.models import (
    SeverityModelParams,
    build_legacy_baseline,
    build_majority_baseline,
    build_severity_model,
    fit_severity_model,
)

MODEL = "severity_model"
LEGACY_BASELINE = "legacy_random_forest"
MAJORITY_BASELINE = "majority_class"


@dataclass
class TrainedModels:
    model: Pipeline
    legacy_baseline: object
    majority_baseline: object
    params: SeverityModelParams
    #: max_leaf_nodes candidate -> validation macro-F1 (model selection).
    selection: dict[int, float]
    best_iteration: int


def train_models(
    features: pd.DataFrame,
    baseline_features: pd.DataFrame,
    spec: FeatureSpec,
    params: SeverityModelParams,
    max_leaf_nodes_candidates: list[int],
    log=print,
) -> TrainedModels:
    """Fit each candidate on `train` with early stopping on `validation`, keep the best by
    validation macro-F1; fit both baselines on the same `train` rows. `test` is not read."""
    train, validation = split_frame(features, "train"), split_frame(features, "validation")
    classes = sorted(spec.classes)
    selection, best = {}, None
    for leaves in max_leaf_nodes_candidates:
        candidate_params = replace(params, max_leaf_nodes=leaves)
        candidate = fit_severity_model(build_severity_model(spec, candidate_params), train, validation, spec)
        proba = candidate.predict_proba(validation[spec.names])
        score = metrics.classification_metrics(validation[spec.target], proba, classes)["macro_f1"]
        selection[leaves] = score
        log(
            f"max_leaf_nodes={leaves}: validation macro-F1 {score:.4f} "
            f"after {candidate.named_steps['model'].n_iter_} iterations"
        )
        if best is None or score > best[0]:
            best = (score, candidate, candidate_params)
    _, model, best_params = best

    baseline_train = split_frame(baseline_features, "train")
    columns = baseline_columns(baseline_features)
    log(f"Fitting the legacy random forest on {len(baseline_train):,} rows")
    legacy = build_legacy_baseline(params.random_state).fit(
        baseline_train[columns], baseline_train["severity"]
    )
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
    )


def typical_road_user(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, int | float | None]:
    """The most frequent code of each categorical feature and the median of each numeric one,
    on the train split: a sensible starting point for a form."""
    train = split_frame(features, "train")
    typical: dict[str, int | float | None] = {}
    for feature in spec.features:
        column = train[feature.name].dropna()
        if column.empty:
            typical[feature.name] = None
        elif feature.is_categorical:
            typical[feature.name] = int(column.mode().iloc[0])
        elif feature.data_type == "integer":
            typical[feature.name] = int(round(column.median()))
        else:
            typical[feature.name] = float(column.median())
    return typical
