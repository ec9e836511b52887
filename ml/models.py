"""The estimators: the severity model and the two baselines it must beat."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

if TYPE_CHECKING:  # at run time this module needs nothing else of ours: MLflow ships it with the model
    from ml.features import FeatureSpec


class CodebookTyper(TransformerMixin, BaseEstimator):
    """Orders the columns as the feature specification does and types them: each code
    column becomes a pandas Categorical over the code book's codes (so the gradient
    boosting treats it as a category, never as a number), the rest floats."""

    def __init__(self, columns: list[str] | None = None, categories: dict[str, list[int]] | None = None):
        self.columns = columns
        self.categories = categories

    def fit(self, X: pd.DataFrame, y=None):
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        columns = {}
        for name in self.columns:
            if name in self.categories:
                columns[name] = pd.Categorical(X[name], categories=self.categories[name])
            else:
                columns[name] = pd.to_numeric(X[name], errors="coerce").astype("float64")
        return pd.DataFrame(columns, index=X.index)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns, dtype=object)


@dataclass(frozen=True)
class SeverityModelParams:
    """The hyper-parameters of the gradient boosting, defined here only: the Dagster config
    (Launchpad) and the MLflow params are derived from these fields."""

    learning_rate: float = 0.1
    max_iter: int = 500
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    n_iter_no_change: int = 20
    class_weight: str | None = "balanced"
    random_state: int = 42


def build_severity_model(spec: FeatureSpec, params: SeverityModelParams) -> Pipeline:
    """Gradient boosting with native categorical support, class-balanced, seeded. Early
    stopping watches the validation split (passed to ``fit`` as ``model__X_val``)."""
    typer = CodebookTyper(
        columns=spec.names,
        categories={f.name: sorted(f.codes) for f in spec.features if f.is_categorical},
    )
    model = HistGradientBoostingClassifier(
        **asdict(params), categorical_features="from_dtype", early_stopping=True
    )
    return Pipeline([("types", typer), ("model", model)])


def fit_severity_model(
    pipeline: Pipeline, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec
) -> Pipeline:
    typer: CodebookTyper = pipeline.named_steps["types"]
    return pipeline.fit(
        train[spec.names],
        train[spec.target],
        model__X_val=typer.transform(validation[spec.names]),
        model__y_val=validation[spec.target],
    )


def build_legacy_baseline(random_state: int = 42, max_samples: int | None = None) -> RandomForestClassifier:
    """The replaced project's approach: a random forest on codes taken as plain numbers.
    ``min_samples_leaf=5`` and at most ``max_samples`` rows per tree keep the stored forest
    to a reasonable size and time on the full data."""
    return RandomForestClassifier(
        n_estimators=100, min_samples_leaf=5, max_samples=max_samples, n_jobs=-1, random_state=random_state
    )


def build_majority_baseline() -> DummyClassifier:
    """Always predicts the most frequent class of the training split."""
    return DummyClassifier(strategy="most_frequent")
