"""Evaluating trained models on the held-out test split: pure functions of frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.inspection import permutation_importance
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from ml import bootstrap, metrics
from ml.array_model import compile_model
from ml.contracts import BOOTSTRAP_RESAMPLES, FEATURE_MODELS, MAJORITY_BASELINE, MODEL
from ml.data import baseline_columns, split_frame
from ml.features import FeatureSpec
from ml.scoring import class_probabilities, model_input
from ml.threads import available_cores, threads_for_rows

#: The rows the evaluation reads (``ml.data.read_table``): every figure is on the test
#: split, the importances (permutation, explanations) on validation.
TEST_SPLITS = ("test",)
EVALUATION_SPLITS = ("validation", "test")


@dataclass
class Evaluation:
    metrics: dict[str, dict[str, float]]  # model name -> metric -> value
    per_class: dict[int, dict[str, float]]  # the severity model's
    confusion: np.ndarray  # the severity model's
    test_proba: np.ndarray
    y_test: np.ndarray
    #: model name -> metric -> 95% bootstrap interval over test accidents (empty: not computed).
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    #: model name -> metric -> its value on each bootstrap resample, every model on the same
    #: resamples (what a paired gain between two of them reads).
    resampled: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def beats_majority(self) -> bool:
        """The gate every challenger must pass: a better test macro-F1 than always
        predicting the most frequent class."""
        return self.metrics[MODEL]["macro_f1"] > self.metrics[MAJORITY_BASELINE]["macro_f1"]


def model_inputs(
    name: str, features: pd.DataFrame, baseline_features: pd.DataFrame, spec: FeatureSpec
) -> pd.DataFrame:
    # A model of an earlier feature set picks its own columns among the specification's.
    return (
        features[spec.names]
        if name in FEATURE_MODELS
        else baseline_features[baseline_columns(baseline_features)]
    )


def evaluate_on_test(
    estimators: dict[str, object],
    features: pd.DataFrame,
    baseline_features: pd.DataFrame,
    spec: FeatureSpec,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = bootstrap.SEED,
) -> Evaluation:
    """Score every estimator on the `test` split only, each metric with its 95% interval
    from ``resamples`` bootstrap resamples of the test accidents (0: none), the same
    resamples for every model."""
    classes = sorted(spec.classes)
    test, baseline_test = split_frame(features, "test"), split_frame(baseline_features, "test")
    scored, results = {}, {}
    for name, estimator in estimators.items():
        rows = test if name in FEATURE_MODELS else baseline_test
        proba = class_probabilities(estimator, model_inputs(name, test, baseline_test, spec), classes)
        scored[name] = (rows[spec.target].to_numpy(), proba, rows[spec.key].to_numpy())
        results[name] = metrics.classification_metrics(rows[spec.target], proba, classes)
    resampled, intervals = {}, {}
    if resamples:  # every model on the same resamples, each drawn once
        accidents = np.unique(test[spec.key])
        resampled = bootstrap.resampled_metrics_of_models(scored, classes, accidents, resamples, seed)
        intervals = {
            name: {metric: bootstrap.percentile_interval(values) for metric, values in by_metric.items()}
            for name, by_metric in resampled.items()
        }
    model_proba = scored[MODEL][1] if MODEL in scored else None
    y_test = test[spec.target].to_numpy()
    return Evaluation(
        metrics=results,
        per_class=metrics.per_class_metrics(y_test, model_proba, classes),
        confusion=metrics.confusion(y_test, model_proba, classes),
        test_proba=model_proba,
        y_test=y_test,
        intervals=intervals,
        resampled=resampled,
    )


def permutation_importance_on_validation(
    model: Pipeline,
    features: pd.DataFrame,
    spec: FeatureSpec,
    max_rows: int = 2_000,
    repeats: int = 5,
    random_state: int = 42,
) -> pd.DataFrame:
    """Mean and std drop of validation macro-F1 when each feature is shuffled (``repeats``
    times, on at most ``max_rows`` validation rows: enough for a ranking, affordable on the
    full data), most important first. The rows are scored by the compiled model
    (``ml.array_model``), which gives the pipeline's probabilities without re-typing 39
    columns for each of the features x repeats predictions."""
    validation = split_frame(features, "validation")
    if len(validation) > max_rows:
        validation = validation.sample(max_rows, random_state=random_state)
    compiled = compile_model(model, spec.names)

    def macro_f1(_model, X: np.ndarray, y: np.ndarray) -> float:  # ``model``, scored compiled
        predicted = compiled.classes_[np.argmax(compiled.predict_proba(X), axis=1)]
        return f1_score(y, predicted, average="macro")

    # Features on threads, one per core, when each scoring of these rows is one thread's
    # (ml.threads; more rows would nest threads): the trees release the GIL, and the
    # shuffles are seeded per feature, so the figures do not depend on the threads (a
    # national model: 25 s on one thread, 16 s on two).
    jobs = available_cores() if threads_for_rows(len(validation)) == 1 else 1
    with parallel_config(backend="threading"):
        result = permutation_importance(
            model,
            model_input(validation, spec).to_numpy(dtype=np.float64),
            validation[spec.target].to_numpy(),
            scoring=macro_f1,
            n_repeats=repeats,
            random_state=random_state,
            n_jobs=jobs,
        )
    return pd.DataFrame(
        {"importance_mean": result.importances_mean, "importance_std": result.importances_std},
        index=spec.names,
    ).sort_values("importance_mean", ascending=False)


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
    return metrics.classification_metrics(test[spec.target], proba, classes)[metric]


@dataclass(frozen=True)
class PairedGain:
    """A challenger's gain over the champion on one test metric, with its 95% interval from
    a paired bootstrap over the test accidents (both scored on the same resamples)."""

    gain: float
    low: float
    high: float
    champion_score: float

    @property
    def beyond_noise(self) -> bool:
        """The whole interval is above 0: a gain the test split's noise does not explain."""
        return self.low > 0


def paired_gain_on_test(
    challenger,
    champion,
    features: pd.DataFrame,
    spec: FeatureSpec,
    metric: str = "macro_f1",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = bootstrap.SEED,
) -> PairedGain | None:
    """``metric`` of the challenger minus the champion's on the current test split, with
    its interval; None when the champion cannot score the current features."""
    gains = paired_gains_on_test(challenger, champion, features, spec, (metric,), resamples, seed)
    return None if gains is None else gains[metric]


def paired_gains_on_test(
    challenger,
    champion,
    features: pd.DataFrame,
    spec: FeatureSpec,
    metric_names: Sequence[str] = ("macro_f1",),
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = bootstrap.SEED,
) -> dict[str, PairedGain] | None:
    """Each metric's paired gain (paired_gain_on_test), from one scoring of the test split
    per model and one bootstrap of both models for all metrics: at national size a scoring of
    the 390,000 test road users costs seconds, and the bootstrap more."""
    test = split_frame(features, "test")
    classes = sorted(spec.classes)
    try:
        champion_proba = class_probabilities(champion, test[spec.names], classes)
    except (KeyError, ValueError):
        return None
    challenger_proba = class_probabilities(challenger, test[spec.names], classes)
    y, groups = test[spec.target].to_numpy(), test[spec.key].to_numpy()
    resampled = bootstrap.resampled_metrics_of_models(
        {"challenger": (y, challenger_proba, groups), "champion": (y, champion_proba, groups)},
        classes,
        np.unique(groups),
        resamples,
        seed,
        list(metric_names),
    )
    return _paired_gains(
        metrics.classification_metrics(y, challenger_proba, classes),
        metrics.classification_metrics(y, champion_proba, classes),
        resampled["challenger"],
        resampled["champion"],
        metric_names,
    )


def paired_gains_in_evaluation(
    evaluation: Evaluation, challenger: str, champion: str, metric_names: Sequence[str]
) -> dict[str, PairedGain]:
    """``paired_gains_on_test`` between two models of one evaluation, read from its scores
    and bootstrap resamples (the same test rows and resamples: the same figures) instead of
    scoring and resampling both models again."""
    if not evaluation.resampled:
        raise ValueError("the evaluation has no bootstrap resamples to pair (bootstrap_resamples=0)")
    return _paired_gains(
        evaluation.metrics[challenger],
        evaluation.metrics[champion],
        evaluation.resampled[challenger],
        evaluation.resampled[champion],
        metric_names,
    )


def _paired_gains(
    challenger_scores: dict[str, float],
    champion_scores: dict[str, float],
    challenger_resampled: dict[str, np.ndarray],
    champion_resampled: dict[str, np.ndarray],
    metric_names: Sequence[str],
) -> dict[str, PairedGain]:
    gains = {}
    for metric in metric_names:
        low, high = bootstrap.percentile_interval(challenger_resampled[metric] - champion_resampled[metric])
        gains[metric] = PairedGain(
            gain=float(challenger_scores[metric] - champion_scores[metric]),
            low=low,
            high=high,
            champion_score=float(champion_scores[metric]),
        )
    return gains
