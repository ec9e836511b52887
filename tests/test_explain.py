"""Explanations (ml.explain): the reference road user, contributions that are the model's own
changes in P(severe), and their signs on a hand-made case a model has learnt.

The sign case needs a model that knows a lorry hurts a pedestrian more than a bicycle does.
The shipped sample cannot teach it (3 pedestrians hit by a heavy goods vehicle, 2 by a
bicycle), so a real gradient boosting is trained on hand-made road users whose severity
follows that rule and nothing else.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import explain
from ml.array_model import compile_model
from ml.baac import SEVERE_CLASSES
from ml.contracts import SeverityModelParams
from ml.data import read_training_tables
from ml.defaults import DBT_PROJECT_DIR
from ml.features import load_feature_spec
from ml.models import build_severity_model, fit_severity_model
from ml.scoring import model_input
from ml.tracking import EXPLANATION_IMPORTANCE_TABLE

SPEC = load_feature_spec(DBT_PROJECT_DIR)
CLASSES = sorted(SPEC.classes)
CAR, BICYCLE, LORRY = 7, 1, 14  # vehicle category codes: car alone, bicycle, HGV over 7.5 t
DRIVER, PEDESTRIAN = 1, 3  # user category codes
# Enough rows that the rule's two features stand above what the model makes of noise in the
# 39 others (at 3,000 rows, noise in longitude could rank second).
ROWS = 10_000


def hand_made_road_users(rng: np.random.Generator) -> pd.DataFrame:
    """Every feature drawn at random from its code book (70% its first code, as real codes
    are skewed) or its range, but the vehicle (60% cars) and who the user is (60% drivers);
    a pedestrian hit by a lorry is mostly hospitalised or
    killed, by a bicycle mostly unhurt or lightly hurt, anyone else a coin toss."""
    frame = pd.DataFrame({SPEC.key: np.arange(ROWS), SPEC.split: rng.choice(["train", "validation"], ROWS)})
    for feature in SPEC.features:
        if feature.is_categorical:
            codes = sorted(feature.codes)
            share = np.full(len(codes), 0.3 / max(len(codes) - 1, 1))
            share[0] = 0.7 if len(codes) > 1 else 1.0
            frame[feature.name] = rng.choice(codes, size=ROWS, p=share).astype("float64")
        else:
            frame[feature.name] = rng.uniform(feature.minimum, feature.maximum, size=ROWS).round()
    frame["vehicle_category_code"] = rng.choice([CAR, BICYCLE, LORRY], ROWS, p=[0.6, 0.2, 0.2]).astype(float)
    frame["user_category_code"] = rng.choice([DRIVER, PEDESTRIAN], ROWS, p=[0.6, 0.4]).astype(float)
    pedestrian = frame["user_category_code"] == PEDESTRIAN
    p_severe = np.where(
        pedestrian & (frame["vehicle_category_code"] == LORRY),
        0.9,
        np.where(pedestrian & (frame["vehicle_category_code"] == BICYCLE), 0.1, 0.5),
    )
    severe = rng.random(ROWS) < p_severe
    frame[SPEC.target] = np.where(severe, rng.choice([3, 4], ROWS), rng.choice([1, 2], ROWS))
    return frame


@pytest.fixture(scope="module")
def learnt():
    """(features, fitted pipeline, reference dict) on the hand-made road users."""
    features = hand_made_road_users(np.random.default_rng(12))
    params = replace(
        SeverityModelParams(), max_iter=60, max_leaf_nodes=7, min_samples_leaf=100, n_iter_no_change=60
    )
    model = build_severity_model(SPEC, params)
    train, validation = (features[features[SPEC.split] == s] for s in ("train", "validation"))
    model = fit_severity_model(model, train, validation, SPEC).pipeline
    return features, model, explain.reference_road_user(features, SPEC)


def pedestrian_hit_by(vehicle: int, reference: dict) -> np.ndarray:
    """The reference road user, but a pedestrian hit by ``vehicle``."""
    user = {**reference, "user_category_code": PEDESTRIAN, "vehicle_category_code": vehicle}
    return explain.reference_vector(user, SPEC.names)


def severe(model, X: np.ndarray) -> np.ndarray:
    proba = model.predict_proba(pd.DataFrame(X, columns=SPEC.names))
    return proba[:, [CLASSES.index(c) for c in SEVERE_CLASSES]].sum(axis=1)


def test_the_reference_is_the_train_splits_mode_or_median():
    spec_names = ["lighting_code", "age", "latitude", "seat_position_code"]
    spec = replace(SPEC, features=tuple(SPEC[name] for name in spec_names))
    frame = pd.DataFrame(
        {
            "split": ["train"] * 5 + ["test"] * 3,
            "lighting_code": [1, 3, 3, 1, np.nan, 5, 5, 5],  # tie 1 / 3: the smaller code
            "age": [20, 30, 90, np.nan, np.nan, 1, 1, 1],  # median of the recorded: 30
            "latitude": [np.nan, np.nan, np.nan, 45.5, 46.5, 1, 1, 1],  # mostly not recorded
            "seat_position_code": [np.nan, np.nan, np.nan, 1, 2, 1, 1, 1],  # not recorded is the mode
        }
    )
    assert explain.reference_road_user(frame, spec) == {
        "lighting_code": 1,
        "age": 30,
        "latitude": None,
        "seat_position_code": None,
    }


def test_a_lorry_raises_a_pedestrians_p_severe_and_a_bicycle_lowers_it(learnt):
    _, model, reference = learnt
    assert reference["vehicle_category_code"] == CAR and reference["user_category_code"] == DRIVER
    X = np.vstack([pedestrian_hit_by(LORRY, reference), pedestrian_hit_by(BICYCLE, reference)])
    result = explain.explain_rows(
        compile_model(model, SPEC.names),
        X,
        explain.reference_vector(reference, SPEC.names),
        SPEC.names,
        CLASSES,
    )
    lorry, bicycle = result.contributions[:, SPEC.names.index("vehicle_category_code")]
    assert result.severe[0] > result.severe[1]
    assert lorry > 0 > bicycle
    # Only the vehicle and the user category differ from the reference: every other
    # feature contributes exactly nothing.
    moved = {SPEC.names[j] for j in np.flatnonzero(result.contributions[0])}
    assert moved <= {"vehicle_category_code", "user_category_code"}
    (reason, *_) = explain.top_reasons(result, 0, X, SPEC, top=3)
    assert reason["feature"] in moved and reason["contribution"] == pytest.approx(
        np.abs(result.contributions[0]).max()
    )
    words = {r["feature"]: r["text"] for r in explain.top_reasons(result, 0, X, SPEC, top=3)}
    assert words["vehicle_category_code"] == (
        f"Category of the user's vehicle: heavy goods vehicle alone, over 7.5 t {lorry:+.1f} points"
    )


def test_contributions_are_the_models_own_changes_and_add_up_with_interactions(learnt):
    features, model, reference = learnt
    X = model_input(features.head(50), SPEC).to_numpy()
    ref = explain.reference_vector(reference, SPEC.names)
    result = explain.explain_rows(compile_model(model, SPEC.names), X, ref, SPEC.names, CLASSES)
    assert result.names == SPEC.names
    assert result.contributions.shape == (50, len(SPEC.names))
    assert np.isfinite(result.contributions).all() and np.isfinite(result.interactions).all()
    # Each contribution is the pipeline's own P(severe) change, scored on a DataFrame.
    for j in (0, SPEC.names.index("vehicle_category_code"), SPEC.names.index("age")):
        replaced = X.copy()
        replaced[:, j] = ref[j]
        expected = 100 * (severe(model, X) - severe(model, replaced))
        np.testing.assert_allclose(result.contributions[:, j], expected, atol=1e-9)
    np.testing.assert_allclose(result.severe, severe(model, X), atol=1e-12)
    assert result.reference_severe == pytest.approx(severe(model, ref[None, :])[0], abs=1e-12)
    # What single features do not account for is the rest of the change from the reference.
    np.testing.assert_allclose(
        result.contributions.sum(axis=1) + result.interactions,
        100 * (result.severe - result.reference_severe),
        atol=1e-9,
    )
    # The reference itself has nothing to explain.
    itself = explain.explain_rows(compile_model(model, SPEC.names), ref[None, :], ref, SPEC.names, CLASSES)
    assert not itself.contributions.any() and itself.interactions[0] == pytest.approx(0, abs=1e-9)
    assert explain.top_reasons(itself, 0, ref[None, :], SPEC, top=5) == []


def test_values_in_words_from_the_code_book():
    vehicle, age, latitude = SPEC["vehicle_category_code"], SPEC["age"], SPEC["latitude"]
    assert explain.feature_label(latitude) == "Latitude in degrees"
    assert explain.value_label(vehicle, 1.0) == "bicycle"
    assert explain.value_label(vehicle, np.nan) == "not recorded"
    assert explain.value_label(age, 80.0) == "80"
    assert explain.value_label(latitude, 48.8566) == "48.86"
    assert explain.reason_text("Age at the accident (years)", "80", 12.345) == (
        "Age at the accident (years): 80 +12.3 points"
    )


def test_global_importance_ranks_what_the_rule_uses(learnt):
    features, model, reference = learnt
    table = explain.global_importance(model, features, reference, SPEC, max_rows=500)
    assert list(table.columns) == ["mean_abs_contribution", "mean_contribution"]
    assert sorted(table.index) == sorted(SPEC.names)
    assert table["mean_abs_contribution"].is_monotonic_decreasing
    assert (table["mean_abs_contribution"] >= 0).all()
    # The only features the severity depends on come first.
    assert set(table.index[:2]) == {"vehicle_category_code", "user_category_code"}


def test_the_sample_champion_explains_against_the_reference_stored_with_it(pipeline_run):
    """On the sample: the champion's run holds the train split's reference road user (the API
    loads it with the model) and the evaluation logged the global importance of every feature."""
    from api.model_store import ChampionStore

    store = ChampionStore(pipeline_run.tracking_uri, SPEC.names)
    store.refresh()
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as conn:
        features, _ = read_training_tables(conn, SPEC)
    expected = explain.reference_vector(explain.reference_road_user(features, SPEC), SPEC.names)
    np.testing.assert_array_equal(store.model.reference, expected)
    with tempfile.TemporaryDirectory() as tmp:
        path = store.client.download_artifacts(store.model.run_id, EXPLANATION_IMPORTANCE_TABLE, tmp)
        table = pd.read_csv(path, index_col="feature")
    assert sorted(table.index) == sorted(SPEC.names)
    assert table["mean_abs_contribution"].is_monotonic_decreasing
    assert (table["mean_abs_contribution"] >= 0).all() and table["mean_abs_contribution"].iloc[0] > 0
    X = model_input(features.head(20), SPEC).to_numpy()
    result = explain.explain_rows(store.model.scorer, X, store.model.reference, SPEC.names, CLASSES)
    assert np.isfinite(result.contributions).all()
