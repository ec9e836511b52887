"""The estimators: the severity model and the two baselines it must beat."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

if TYPE_CHECKING:  # at run time this module needs nothing else of ours: MLflow ships it with the model
    from ml.contracts import SeverityModelParams
    from ml.features import FeatureSpec


class CodeTable:
    """A vectorised lookup from a code, as a float (NaN = not recorded), to a float: the
    table's value for a whole non-negative code it holds, NaN for anything else (a code
    outside the code book, 2.5, -1, NaN)."""

    def __init__(self, values: dict[int, float]):
        #: The codes that map to a number, in the order of their values.
        self.categories = sorted(values, key=values.get)
        size = max(values, default=-1) + 2  # the last slot: anything not in the table
        self.table = np.full(size, np.nan)
        for code, value in values.items():
            self.table[code] = value

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float64)
        valid = (codes >= 0) & (codes <= len(self.table) - 2) & (np.trunc(codes) == codes)
        return self.table[np.where(valid, codes, len(self.table) - 1).astype(np.intp)]


class CodebookTyper(TransformerMixin, BaseEstimator):
    """Orders the columns as the feature specification does and types them: each code
    column becomes a pandas Categorical over the code book's codes (so the gradient
    boosting treats it as a category, never as a number), the rest floats.

    ``transform`` takes a DataFrame (training, evaluation) or a float array whose columns
    are ``columns`` in order (scoring: NaN = not recorded); both give the same frame. Codes
    are typed through a lookup table (``pd.Categorical.from_codes``), not by matching
    values (which pandas deprecates for values outside the categories, and which is slow).
    The tables are built on first use, never stored: models saved before they existed load
    and score the same way.
    """

    def __init__(self, columns: list[str] | None = None, categories: dict[str, list[int]] | None = None):
        self.columns = columns
        self.categories = categories

    def fit(self, X: pd.DataFrame, y=None):
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            return self._typed(np.asarray(X, dtype=np.float64), index=None)
        numbers = np.column_stack(
            [pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64) for name in self.columns]
        ).reshape(len(X), len(self.columns))
        return self._typed(numbers, index=X.index)

    def _typed(self, X: np.ndarray, index) -> pd.DataFrame:
        """A value outside a column's code book (or NaN) becomes a missing category."""
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"Expected rows of {len(self.columns)} features ({self.columns}), got {X.shape}")
        columns = {}
        for j, name in enumerate(self.columns):
            if name in self.categories:
                positions = self.codebook_table(name).lookup(X[:, j])
                codes = np.where(np.isnan(positions), -1, positions).astype(np.int64)
                columns[name] = pd.Categorical.from_codes(codes, dtype=self._dtype(name))
            else:
                columns[name] = X[:, j]
        return pd.DataFrame(columns, index=index)

    def codebook_table(self, name: str) -> CodeTable:
        """Code -> its position in the code book of column ``name`` (the Categorical's code)."""
        return self._tables().setdefault(
            ("codebook", name), CodeTable({c: float(i) for i, c in enumerate(self.categories[name])})
        )

    def booster_code_table(self, name: str, seen_categories) -> CodeTable:
        """Code -> its index among ``seen_categories`` (what a model fitted on this typer's
        output learned, e.g. a gradient boosting's ordinal encoding): a code outside the
        code book, or one never seen in training, is NaN (missing), as through the frame."""
        seen = [float(c) for c in seen_categories if not pd.isna(c)]
        index = {c: float(i) for i, c in enumerate(seen)}
        return CodeTable({c: index[float(c)] for c in self.categories[name] if float(c) in index})

    def _dtype(self, name: str) -> pd.CategoricalDtype:
        return self._tables().setdefault(("dtype", name), pd.CategoricalDtype(self.categories[name]))

    def _tables(self) -> dict:
        # Built on first use and not part of the estimator's state (see the class docstring).
        tables = self.__dict__.get("_lookup_tables")
        if tables is None:
            tables = self.__dict__["_lookup_tables"] = {}
        return tables

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_lookup_tables", None)
        return state

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns, dtype=object)


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


class FittedSeverityModel(NamedTuple):
    pipeline: Pipeline
    #: Its macro-F1 on the validation rows its early stopping watched.
    validation_macro_f1: float


def fit_severity_model(
    pipeline: Pipeline,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    spec: FeatureSpec,
    keep_best_iteration: bool = True,
) -> FittedSeverityModel:
    """Fit with early stopping on the validation loss, then (``keep_best_iteration``) keep
    the iterations up to the one with the best validation macro-F1. The pass that finds it
    gives the kept model's validation macro-F1 too, returned with it: scoring the
    validation rows again would cost a compile and a walk of every tree (2-3 s a fit of
    national size). Without ``keep_best_iteration`` the model keeps every iteration and the
    figure is its last iteration's.

    Early stopping watches the class-weighted log loss, which keeps falling long after the
    figures the model is chosen and judged by have peaked: on the national-size data set the
    loss was still falling at iteration 449, where validation macro-F1 had peaked near 300
    and the severe ROC-AUC had been falling since about 50. The trees after the best
    iteration cost every later scoring and make the model no better."""
    typer: CodebookTyper = pipeline.named_steps["types"]
    pipeline.fit(
        train[spec.names],
        train[spec.target],
        model__X_val=typer.transform(validation[spec.names]),
        model__y_val=validation[spec.target],
    )
    classes = sorted(spec.classes)
    scores = macro_f1_by_iteration(pipeline, validation[spec.names], validation[spec.target], classes)
    # The first best: the fewest trees.
    kept = int(np.argmax(scores)) if keep_best_iteration else len(scores) - 1
    keep_iterations(pipeline, kept + 1)
    return FittedSeverityModel(pipeline, float(scores[kept]))


def macro_f1_by_iteration(pipeline: Pipeline, rows: pd.DataFrame, y_true, classes: list[int]) -> np.ndarray:
    """Macro-F1 (over ``classes``, 0 for a class never true nor predicted) of the fitted
    severity pipeline after each boosting iteration, on ``rows`` (its features, as floats):
    as scikit-learn's macro ``f1_score`` of the model cut after each iteration would give."""
    booster: HistGradientBoostingClassifier = pipeline.named_steps["model"]
    n = len(classes)
    truth = np.searchsorted(classes, np.asarray(y_true))
    predicted_index = np.searchsorted(classes, booster.classes_)  # booster column -> class index
    scores = []
    for predicted in staged_class_columns(pipeline, rows):
        counts = np.bincount(truth * n + predicted_index[predicted], minlength=n * n).reshape(n, n)
        true_positives = np.diag(counts)
        denominator = counts.sum(axis=0) + counts.sum(axis=1)  # 2 TP + FP + FN
        f1 = np.divide(2 * true_positives, denominator, out=np.zeros(n), where=denominator > 0)
        scores.append(f1.mean())
    return np.asarray(scores)


def staged_class_columns(pipeline: Pipeline, rows: pd.DataFrame):
    """After each boosting iteration of the fitted severity pipeline, the column of the
    class it predicts for each of ``rows`` (its features as numbers, NaN = not recorded):
    ``staged_predict_proba(...).argmax(axis=1)`` to the bit, from the trees walked in
    compiled code (``ml.compiled_model``: ``staged_raw``, ``predicted_columns``). Measured
    on the national-size model cut at 316 iterations and 150,000 validation rows: 5.2 s
    against 19.6 s through scikit-learn, whose per-tree calls and softmax of every row
    after every iteration were most of its time."""
    # Imported here: the model itself (what MLflow loads) needs nothing else of ours.
    from ml.array_model import CompiledBoosting
    from ml.compiled_model import predicted_columns

    features = list(pipeline.named_steps["types"].columns)
    compiled = CompiledBoosting(pipeline, features)
    for raw in compiled.staged_raw(rows[features].to_numpy(dtype=np.float64, na_value=np.nan)):
        yield predicted_columns(raw)


def keep_iterations(pipeline: Pipeline, iterations: int) -> Pipeline:
    """Cut the fitted booster after ``iterations`` iterations, in place: the model then
    predicts exactly what ``staged_predict_proba`` gave at that iteration. scikit-learn has
    no public way to shorten a fitted booster (``warm_start`` only adds iterations); its
    ``n_iter_`` is the length of ``_predictors``, which ``ml.array_model`` reads too."""
    booster: HistGradientBoostingClassifier = pipeline.named_steps["model"]
    if not 1 <= iterations <= booster.n_iter_:
        raise ValueError(f"cannot keep {iterations} of {booster.n_iter_} iterations")
    booster._predictors = booster._predictors[:iterations]
    # One score before the first iteration, then one per iteration.
    booster.train_score_ = booster.train_score_[: iterations + 1]
    booster.validation_score_ = booster.validation_score_[: iterations + 1]
    return pipeline


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
