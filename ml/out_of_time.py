"""Out-of-time evaluation: "how will this model do on the next period?".

The test split mixes accidents of every period, so its score is an in-time estimate. Here a
model of the challenger's configuration (same hyper-parameters, its number of boosting
iterations fixed) is trained on the older accidents only and scored on the newest period:
with several years, the newest year against the years before; with one year only (the
shipped sample is 2016 alone) the last quarter of the months present against the months
before it. The cut is on the accident's date (year from ``num_acc``, ``month`` from the
features), so no accident is on both sides. Every split (train, validation, test) of a side
is used: this model is thrown away once scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ml import metrics
from ml.baac import accident_year
from ml.features import FeatureSpec
from ml.scoring import class_probabilities
from ml.training import stratified_rows

#: The months of the newest period when the data holds one year (the last quarter).
NEWEST_MONTHS = 3
#: The out-of-time model is fit on at most this many older rows (stratified), like the
#: challenger's own final fit (TrainingPlan.final_fit_rows), so it costs no more at national scale.
MAX_TRAIN_ROWS = 150_000
#: The newest period is scored on at most this many rows (stratified).
MAX_SCORED_ROWS = 200_000


@dataclass(frozen=True)
class OutOfTimeCut:
    """Where the data is cut: rows on or after ``(year, month)`` are the newest period."""

    year: int
    month: int  # 1 for a cut between years
    kind: str  # "year" or "months"
    description: str

    def is_newest(self, frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
        """True for the rows of the newest period."""
        years = frame[spec.key].map(accident_year).to_numpy()
        if self.kind == "year":
            return years >= self.year
        months = frame["month"].to_numpy()
        return (years > self.year) | ((years == self.year) & (months >= self.month))


@dataclass(frozen=True)
class OutOfTimeResult:
    cut: OutOfTimeCut
    metrics: dict[str, float]
    train_rows: int  # older rows the model was fit on (capped)
    scored_rows: int  # newest rows scored (capped)
    iterations: int

    def mlflow_metrics(self) -> dict[str, float]:
        return {f"oot_{name}": value for name, value in self.metrics.items()}


def choose_cut(frame: pd.DataFrame, spec: FeatureSpec) -> OutOfTimeCut | None:
    """The newest year against older years; with one year, its last ``NEWEST_MONTHS`` months
    present against the months before. None when there is nothing older to train on."""
    years = sorted({accident_year(n) for n in frame[spec.key].unique()})
    if len(years) > 1:
        newest = years[-1]
        return OutOfTimeCut(
            newest, 1, "year", f"{newest} scored by a model trained on {years[0]}-{years[-2]}"
        )
    if not years:
        return None
    months = sorted(int(m) for m in frame["month"].dropna().unique())
    if len(months) < 2:
        return None
    # The last quarter of the months present (at least one month on each side).
    first_newest = months[max(1, len(months) - NEWEST_MONTHS)]
    year = years[0]
    return OutOfTimeCut(
        year,
        first_newest,
        "months",
        f"one year only: {year} months {first_newest}-{months[-1]} scored by a model trained on "
        f"months {months[0]}-{months[months.index(first_newest) - 1]}",
    )


def split_by_cut(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    cut: OutOfTimeCut,
    max_older: int | None = None,
    max_newest: int | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows, newest rows), each side capped at its stratified ``max_*`` rows (None:
    all). The rows are chosen by the target alone before any is copied: the older side is
    nearly all of a national frame (650 MB), and the evaluation runs this beside its
    bootstrap."""
    newest = cut.is_newest(frame, spec)

    def side(mask, max_rows: int | None) -> pd.DataFrame:
        if max_rows is None:
            return frame[mask]
        chosen = stratified_rows(frame.loc[mask, [spec.target]], max_rows, spec.target, seed).index
        return frame.loc[chosen]

    return side(~newest, max_older), side(newest, max_newest)


def same_configuration(fitted: Pipeline) -> Pipeline:
    """An unfitted copy of a fitted severity model with its iterations fixed: the boosting
    stopped early at ``n_iter_`` on its own validation split; this one runs as many,
    without early stopping (it has no validation split of its own)."""
    iterations = int(fitted.named_steps["model"].n_iter_)
    return clone(fitted).set_params(model__max_iter=iterations, model__early_stopping=False)


def evaluate_out_of_time(
    fitted: Pipeline,
    features: pd.DataFrame,
    spec: FeatureSpec,
    max_train_rows: int = MAX_TRAIN_ROWS,
    max_scored_rows: int = MAX_SCORED_ROWS,
) -> OutOfTimeResult | None:
    """Fit a model of ``fitted``'s configuration on the older rows and score it on the newest
    period. None when the data has a single month (nothing older to learn from). The fit
    takes the OpenMP threads of the calling thread: the evaluation runs it on one, beside
    the rest of its work (``ml.threads.beside``)."""
    cut = choose_cut(features, spec)
    if cut is None:
        return None
    seed = int(fitted.named_steps["model"].random_state or 0)
    older, newest = split_by_cut(features, spec, cut, max_train_rows, max_scored_rows, seed)
    classes = sorted(spec.classes)
    model = same_configuration(fitted).fit(older[spec.names], older[spec.target])
    # A class the older rows lack gets probability 0.
    proba = class_probabilities(model, newest[spec.names], classes)
    return OutOfTimeResult(
        cut=cut,
        metrics=metrics.classification_metrics(newest[spec.target], proba, classes),
        train_rows=len(older),
        scored_rows=len(newest),
        iterations=int(model.named_steps["model"].max_iter),
    )


def log_out_of_time(run_id: str, result: OutOfTimeResult) -> None:
    """The out-of-time metrics (``oot_macro_f1``...) and the cut, on the challenger's run."""
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(result.mlflow_metrics())
        mlflow.log_params(
            {
                "oot_cut": result.cut.description,
                "oot_train_rows": result.train_rows,
                "oot_scored_rows": result.scored_rows,
                "oot_iterations": result.iterations,
            }
        )
