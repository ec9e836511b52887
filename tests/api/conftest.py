"""A tiny real champion for the API tests, registered in seconds without the pipeline.

Synthetic but valid road users are generated from the feature specification (every code
from the code book, every number within its range, some not recorded), the severity model
and both baselines are trained on them by ``ml.training.train_models``, and the run is
logged and registered by ``ml.tracking`` exactly as the pipeline's assets do; then the
``champion`` alias is set. The labels are random: the model is real, its skill is not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from api.main import create_app
from api.settings import ApiSettings
from ml import registry
from ml.baac import accident_year, read_split_rule
from ml.contracts import (
    LEGACY_BASELINE,
    MAJORITY_BASELINE,
    MODEL,
    SeverityModelParams,
    TrainingPlan,
    TrainingRecord,
)
from ml.defaults import DBT_PROJECT_DIR
from ml.evaluation import evaluate_on_test, permutation_importance_on_validation
from ml.explain import global_importance, reference_road_user
from ml.features import FeatureSpec, load_feature_spec
from ml.tracking import log_evaluation, log_explanation_importance, log_training_run
from ml.training import train_models

SEED = 20160101
#: Accidents per year; each has 1 to 4 road users.
ACCIDENTS_PER_YEAR = 60
YEARS = (2015, 2016)
NOT_RECORDED_SHARE = 0.1
PARAMS = SeverityModelParams(max_iter=5, min_samples_leaf=5)
#: The training configuration as the pipeline's Launchpad config gives it.
CONFIG = {**dataclasses.asdict(PARAMS), "max_leaf_nodes_candidates": [PARAMS.max_leaf_nodes]}


@pytest.fixture(scope="session")
def spec() -> FeatureSpec:
    return load_feature_spec(DBT_PROJECT_DIR)


def synthetic_features(spec: FeatureSpec, rng: np.random.Generator) -> pd.DataFrame:
    """ml_features as the warehouse would give it: key, split (the project's rule), target and
    every feature as a float, NaN for "not recorded"."""
    split_rule = read_split_rule(DBT_PROJECT_DIR)
    num_acc = np.repeat(
        [year * 100_000_000 + serial for year in YEARS for serial in range(1, ACCIDENTS_PER_YEAR + 1)],
        rng.integers(1, 5, size=len(YEARS) * ACCIDENTS_PER_YEAR),
    )
    rows = len(num_acc)
    frame = pd.DataFrame({spec.key: num_acc, spec.split: [split_rule.split(n) for n in num_acc]})
    frame[spec.target] = rng.integers(1, 5, size=rows)
    for feature in spec.features:
        if feature.is_categorical:
            values = rng.choice(sorted(feature.codes), size=rows).astype("float64")
        elif feature.data_type == "integer":
            values = rng.integers(feature.minimum, feature.maximum, size=rows, endpoint=True).astype(
                "float64"
            )
        else:
            values = rng.uniform(feature.minimum, feature.maximum, size=rows)
        values[rng.random(rows) < NOT_RECORDED_SHARE] = np.nan
        frame[feature.name] = values
    return frame


def synthetic_baseline_features(features: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """ml_baseline_features (columns and order of dbt_project/models/marts/ml_baseline_features.sql)
    on the same rows: shared columns copied, the legacy-only ones drawn."""
    rows = len(features)
    year = features["num_acc"].map(accident_year)
    return pd.DataFrame(
        {
            "num_acc": features["num_acc"],
            "split": features["split"],
            "severity": features["severity"],
            "accident_year": year.astype("float64"),
            "month": features["month"],
            "hour": features["hour"],
            "minute": rng.integers(0, 60, size=rows).astype("float64"),
            "user_category_code": features["user_category_code"],
            "sex_code": features["sex_code"],
            "birth_year": year - features["age"],
            "trip_purpose_code": features["trip_purpose_code"],
            "secu_raw": rng.choice([11, 12, 13, 21, 22, 23, 31, 32, 33], size=rows).astype("float64"),
            "lighting_code": features["lighting_code"],
            "weather_code": features["weather_code"],
            "road_category_code": features["road_category_code"],
            "surface_condition_code": features["surface_condition_code"],
            "latitude": features["latitude"],
            "longitude": features["longitude"],
            "is_public_holiday": features["is_public_holiday"],
        }
    )


@contextlib.contextmanager
def mlflow_globals_restored() -> Iterator[None]:
    """``ml.registry.configure_tracking`` sets MLflow's process-wide tracking and registry URIs
    and active experiment (and ``MLFLOW_EXPERIMENT_ID``): put them back for the other tests."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    saved = [
        (module, name, getattr(module, name))
        for module, name in [
            (tracking_utils, "_tracking_uri"),
            (registry_utils, "_registry_uri"),
            (fluent, "_active_experiment_id"),
        ]
    ]
    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
        if experiment_id is None:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_id


@dataclass(frozen=True)
class RegisteredChampion:
    """What the fixture registered: the API must describe exactly this."""

    tracking_uri: str
    record: TrainingRecord  # version, run id, training data summary (years, rows per split, ...)
    features: pd.DataFrame
    #: A copy of the store as it was before anything was registered (creating one costs seconds).
    empty_store: Path

    @property
    def version(self) -> str:
        return self.record.version


@pytest.fixture(scope="session")
def champion(tmp_path_factory, spec) -> RegisteredChampion:
    root = tmp_path_factory.mktemp("tiny-champion")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    rng = np.random.default_rng(SEED)
    features = synthetic_features(spec, rng)
    baseline = synthetic_baseline_features(features, rng)
    # One thread: a model this small gains nothing from OpenMP, whose waiting for busy cores
    # costs seconds on a shared machine.
    with mlflow_globals_restored(), threadpool_limits(1):
        client = registry.configure_tracking(tracking_uri, root / "artifacts")
        shutil.copy(root / "mlflow.db", root / "empty.db")
        plan = TrainingPlan(max_leaf_nodes_candidates=tuple(CONFIG["max_leaf_nodes_candidates"]))
        trained = train_models(features, baseline, spec, PARAMS, plan, log=lambda _: None)
        record = log_training_run(client, trained, features, baseline, spec, CONFIG)
        estimators = {
            MODEL: trained.model,
            LEGACY_BASELINE: trained.legacy_baseline,
            MAJORITY_BASELINE: trained.majority_baseline,
        }
        evaluation = evaluate_on_test(estimators, features, baseline, spec)
        importance = permutation_importance_on_validation(trained.model, features, spec, repeats=1)
        log_evaluation(record, evaluation, importance, spec)
        reference = reference_road_user(features, spec)  # what the training run stored
        log_explanation_importance(record, global_importance(trained.model, features, reference, spec))
        client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHAMPION, record.version)
    return RegisteredChampion(tracking_uri, record, features, empty_store=root / "empty.db")


@pytest.fixture
def mlflow_globals() -> Iterator[None]:
    """For a test that calls ``configure_tracking``: MLflow's globals are put back after it."""
    with mlflow_globals_restored():
        yield


@pytest.fixture
def champion_without_reference(champion, tmp_path, mlflow_globals) -> str:
    """The tiny champion's own model, registered in a fresh store as versions were before
    explanations: no reference road user in its run."""
    mlflow.set_tracking_uri(champion.tracking_uri)
    model = mlflow.sklearn.load_model(champion.record.model_uris[MODEL])
    shutil.copy(champion.empty_store, tmp_path / "old.db")
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    client = registry.configure_tracking(uri, tmp_path / "artifacts")
    example = champion.features[list(model.named_steps["types"].columns)].head(3)
    with mlflow.start_run() as run:
        info = registry.log_sklearn_model(model, MODEL, example)
    version = registry.register_version(client, info.model_uri, run.info.run_id, {"trained_at": "before"})
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHAMPION, version)
    return uri


@pytest.fixture
def settings(champion, tmp_path) -> ApiSettings:
    """The service on the tiny champion: open (no key), no watcher, predictions logged under
    ``tmp_path``. Tests change a field with ``dataclasses.replace``."""
    return ApiSettings(tracking_uri=champion.tracking_uri, refresh_seconds=0, prediction_log_dir=tmp_path)


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    """The service on the tiny champion, logging predictions under ``tmp_path``."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="session")
def typical(champion, tmp_path_factory) -> dict:
    """A valid road user: the typical one of the training data, as the page starts with."""
    settings = ApiSettings(
        tracking_uri=champion.tracking_uri,
        refresh_seconds=0,
        prediction_log_dir=tmp_path_factory.mktemp("predictions"),
    )
    with TestClient(create_app(settings)) as client:
        return {f["name"]: f["typical"] for f in client.get("/features").json()["features"]}
