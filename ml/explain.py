"""Why this prediction: each feature's contribution to P(severe), measured by taking it away.

The method is model-agnostic and exact for the model that scores (no surrogate): for a road
user and each feature in turn, the feature is replaced by its value in the *reference road
user* (the train split's typical value: the mode of a code, "not recorded" included; the
median of a number, or "not recorded" when most are) and the change in P(severe)
(hospitalised or killed, ``ml.baac.SEVERE_CLASSES``) is that feature's contribution, in
percentage points:

    contribution_j = 100 * (P(severe | x) - P(severe | x with feature j := reference_j))

A road user, its replacements (one row per feature that differs from the reference: a
feature equal to it contributes exactly 0) and the reference itself are scored in ONE
batched call of the compiled model (``ml.array_model``): at most features + 2 rows.

Limits, said plainly: it is not causal (it describes the model, not the road); it moves one
feature at a time, so what features do only together (interactions, or features that move
together such as the day of the week and the weekend flag) is not attributed to any of them:
that remainder, ``100 * (P(x) - P(reference)) - sum(contributions)``, is reported beside
(``Explanations.interactions``). SHAP's exact tree algorithm does not support this model
(a multi-class gradient boosting with native categories behind ``CodebookTyper``) and is not
a dependency of the project.

Pure functions: no MLflow, no service. The reference is computed at training time and stored
with the model version (``ml.tracking``); the API explains with its champion's own reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.contracts import GLOBAL_IMPORTANCE_ROWS
from ml.data import split_frame
from ml.features import Feature, FeatureSpec
from ml.metrics import severe_probability
from ml.scoring import class_probabilities, model_input

#: Road users explained per batched call: each costs at most features + 1 rows of features
#: floats, so a chunk of 1,000 is at most ~12 MB whatever the size of the batch.
EXPLAIN_CHUNK = 1_000


@dataclass(frozen=True)
class Explanations:
    """The contributions of every feature to P(severe) of each road user (input row order)."""

    names: list[str]
    #: P(severe) of each road user, shape (rows,).
    severe: np.ndarray
    #: P(severe) of the reference road user.
    reference_severe: float
    #: Percentage points, shape (rows, features): positive pushed P(severe) up.
    contributions: np.ndarray

    @property
    def interactions(self) -> np.ndarray:
        """Points of ``severe - reference_severe`` that no single feature accounts for."""
        return 100.0 * (self.severe - self.reference_severe) - self.contributions.sum(axis=1)


def reference_road_user(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, int | float | None]:
    """The reference each feature is replaced by: over the train split, a code's most
    frequent value ("not recorded", None, counting as one; ties to the smallest code) and a
    number's median (None when it is more often not recorded than recorded)."""
    train = split_frame(features, "train")
    reference: dict[str, int | float | None] = {}
    for feature in spec.features:
        column = train[feature.name].astype("float64")
        if feature.is_categorical:
            counts = column.value_counts(dropna=False)
            best = counts[counts == counts.max()].index if len(counts) else [np.nan]
            # NaN sorts last: a recorded code wins a tie with "not recorded".
            value = sorted(best, key=lambda v: (np.isnan(v), v))[0]
        else:
            value = column.median() if column.notna().sum() >= column.isna().sum() else np.nan
        if pd.isna(value):
            reference[feature.name] = None
        elif feature.is_categorical or feature.data_type == "integer":
            reference[feature.name] = int(round(value))
        else:
            reference[feature.name] = float(value)
    return reference


def reference_vector(reference: Mapping[str, int | float | None], names: list[str]) -> np.ndarray:
    """The reference as one float row in ``names`` order (None or absent: NaN, "not recorded")."""
    return np.array([np.nan if reference.get(n) is None else float(reference[n]) for n in names])


def _replacements(X: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each road user with one feature set to the reference, for the features that differ
    from it (an equal one would score the same: its contribution is 0 without scoring):
    the rows, and the road user and feature of each."""
    same = (X == reference) | (np.isnan(X) & np.isnan(reference))
    users, features = np.nonzero(~same)
    rows = X[users]
    rows[np.arange(len(users)), features] = reference[features]
    return rows, users, features


def explain_rows(
    scorer, X: np.ndarray, reference: np.ndarray, names: list[str], classes: list[int]
) -> Explanations:
    """The contributions for each row of ``X`` (float rows in ``names`` order, NaN = not
    recorded), scored by ``scorer`` (an ``ml.array_model`` model, or any estimator taking
    those arrays): one batched call per ``EXPLAIN_CHUNK`` road users."""
    X = np.asarray(X, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names) or reference.shape != (len(names),):
        raise ValueError(
            f"Expected rows and a reference of {len(names)} features, got {X.shape} and {reference.shape}"
        )
    severe = np.empty(len(X))
    contributions = np.zeros(X.shape)
    reference_severe = np.nan
    for start in range(0, max(len(X), 1), EXPLAIN_CHUNK):
        chunk = X[start : start + EXPLAIN_CHUNK]
        replaced, users, features = _replacements(chunk, reference)
        # One call: the road users, their replacements, the reference.
        p = severe_probability(
            class_probabilities(scorer, np.vstack([chunk, replaced, reference[None, :]]), classes), classes
        )
        severe[start : start + len(chunk)] = p[: len(chunk)]
        contributions[start + users, features] = 100.0 * (p[users] - p[len(chunk) : -1])
        reference_severe = float(p[-1])
    return Explanations(
        names=list(names), severe=severe, reference_severe=reference_severe, contributions=contributions
    )


# -- in words, from the code book --------------------------------------------------------


def feature_label(feature: Feature) -> str:
    """The feature's description as a label: "Category of the user's vehicle"."""
    return feature.description.replace(" (NULL when not recorded)", "").strip().rstrip(".")


def value_label(feature: Feature, value: float | None) -> str:
    """A value as the code book says it ("heavy goods vehicle alone, over 7.5 t"), a number
    as written (80, 48.85), NaN or None as "not recorded"."""
    if value is None or np.isnan(value):
        return "not recorded"
    if feature.is_categorical:
        return feature.codes.get(int(value), f"code {value:g}")
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def reason_text(label: str, value: str, points: float) -> str:
    """ "Category of the user's vehicle: bicycle -12.3 points" """
    return f"{label}: {value} {points:+.1f} points"


def top_reasons(
    explanations: Explanations, row: int, X: np.ndarray, spec: FeatureSpec, top: int
) -> list[dict]:
    """The ``top`` features that moved road user ``row``'s P(severe) most, either way, largest
    |contribution| first (ties in specification order), in words; features that did not move
    it (equal to the reference) are not reasons."""
    contributions = explanations.contributions[row]
    order = np.argsort(-np.abs(contributions), kind="stable")
    reasons = []
    for j in order[:top]:
        points = float(contributions[j])
        if points == 0.0:
            break
        feature = spec[explanations.names[j]]
        value = float(X[row, j])
        label, shown = feature_label(feature), value_label(feature, value)
        reasons.append(
            {
                "feature": feature.name,
                "label": label,
                "value": None if np.isnan(value) else (int(value) if value.is_integer() else value),
                "value_label": shown,
                "contribution": points,
                "text": reason_text(label, shown, points),
            }
        )
    return reasons


# -- global importance: the same method averaged over validation --------------------------


def global_importance(
    model,
    features: pd.DataFrame,
    reference: Mapping[str, int | float | None],
    spec: FeatureSpec,
    max_rows: int = GLOBAL_IMPORTANCE_ROWS,
    random_state: int = 42,
) -> pd.DataFrame:
    """Mean |contribution| (and mean signed contribution) of each feature over at most
    ``max_rows`` validation rows, in points of P(severe), largest first. ``model`` is scored
    compiled (``ml.array_model``), as the API scores it."""
    from ml.array_model import compile_model  # training's: the API never loads scikit-learn

    validation = split_frame(features, "validation")
    if len(validation) > max_rows:
        validation = validation.sample(max_rows, random_state=random_state)
    scorer = compile_model(model, spec.names)
    X = model_input(validation, spec).to_numpy(dtype=np.float64)
    result = explain_rows(
        scorer, X, reference_vector(reference, spec.names), spec.names, sorted(spec.classes)
    )
    table = pd.DataFrame(
        {
            "mean_abs_contribution": np.abs(result.contributions).mean(axis=0) if len(X) else 0.0,
            "mean_contribution": result.contributions.mean(axis=0) if len(X) else 0.0,
        },
        index=pd.Index(spec.names, name="feature"),
    )
    return table.sort_values("mean_abs_contribution", ascending=False, kind="stable")
