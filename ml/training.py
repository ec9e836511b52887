"""Training and evaluating the severity model and its baselines: pure functions of frames."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from ml import evaluation
from ml.data import baseline_columns
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


def split_frame(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    return frame[frame["split"] == split]


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
        score = evaluation.classification_metrics(validation[spec.target], proba, classes)["macro_f1"]
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
    majority = build_majority_baseline().fit(baseline_train[columns], baseline_train["severity"])
    return TrainedModels(
        model=model,
        legacy_baseline=legacy,
        majority_baseline=majority,
        params=best_params,
        selection=selection,
        best_iteration=int(model.named_steps["model"].n_iter_),
    )


def class_probabilities(estimator, X: pd.DataFrame, classes: list[int]) -> np.ndarray:
    """Probabilities with one column per class in ``classes`` order, whatever classes the
    estimator saw (a baseline that never saw a class gives it 0)."""
    proba = estimator.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    for index, code in enumerate(estimator.classes_):
        out[:, classes.index(int(code))] = proba[:, index]
    return out


def model_inputs(
    name: str, features: pd.DataFrame, baseline_features: pd.DataFrame, spec: FeatureSpec
) -> pd.DataFrame:
    return features[spec.names] if name == MODEL else baseline_features[baseline_columns(baseline_features)]


@dataclass
class Evaluation:
    metrics: dict[str, dict[str, float]]  # model name -> metric -> value
    per_class: dict[int, dict[str, float]]  # the severity model's
    confusion: np.ndarray  # the severity model's
    test_proba: np.ndarray
    y_test: np.ndarray


def evaluate_on_test(
    estimators: dict[str, object], features: pd.DataFrame, baseline_features: pd.DataFrame, spec: FeatureSpec
) -> Evaluation:
    """Score every estimator on the `test` split only."""
    classes = sorted(spec.classes)
    test, baseline_test = split_frame(features, "test"), split_frame(baseline_features, "test")
    results, model_proba = {}, None
    for name, estimator in estimators.items():
        rows = test if name == MODEL else baseline_test
        proba = class_probabilities(estimator, model_inputs(name, test, baseline_test, spec), classes)
        results[name] = evaluation.classification_metrics(rows[spec.target], proba, classes)
        if name == MODEL:
            model_proba = proba
    y_test = test[spec.target].to_numpy()
    return Evaluation(
        metrics=results,
        per_class=evaluation.per_class_metrics(y_test, model_proba, classes),
        confusion=evaluation.confusion(y_test, model_proba, classes),
        test_proba=model_proba,
        y_test=y_test,
    )


def permutation_importance_on_validation(
    model: Pipeline,
    features: pd.DataFrame,
    spec: FeatureSpec,
    max_rows: int = 20_000,
    repeats: int = 5,
    random_state: int = 42,
) -> pd.DataFrame:
    """Mean and std drop of validation macro-F1 when each feature is shuffled (``repeats``
    times, on at most ``max_rows`` validation rows: enough for a ranking, affordable on the
    full data)."""
    validation = split_frame(features, "validation")
    if len(validation) > max_rows:
        validation = validation.sample(max_rows, random_state=random_state)
    result = permutation_importance(
        model,
        validation[spec.names],
        validation[spec.target],
        scoring="f1_macro",
        n_repeats=repeats,
        random_state=random_state,
        n_jobs=1,
    )
    return pd.DataFrame(
        {"importance_mean": result.importances_mean, "importance_std": result.importances_std},
        index=spec.names,
    ).sort_values("importance_mean", ascending=False)


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


def score_on_test(
    estimator, features: pd.DataFrame, spec: FeatureSpec, metric: str = "macro_f1"
) -> float | None:
    """``metric`` of a (registered) model on the current test split; None when it cannot
    score the current features (trained on another feature specification)."""
    test = split_frame(features, "test")
    classes = sorted(spec.classes)
    try:
        proba = class_probabilities(estimator, test[spec.names], classes)
    except (KeyError, ValueError):
        return None
    return evaluation.classification_metrics(test[spec.target], proba, classes)[metric]
