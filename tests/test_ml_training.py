"""Training, registry and promotion on the sample, with a real MLflow store."""

from __future__ import annotations

import shutil
import subprocess

import dagster as dg
import duckdb
import pandas as pd
import pytest
from mlflow import MlflowClient

from ml import registry
from ml.data import read_training_tables
from ml.features import load_feature_spec
from ml.models import SeverityModelParams
from ml.training import MODEL, evaluate_on_test, train_models
from orchestration import settings
from orchestration.assets.ml import champion_model, severity_model, severity_model_evaluation
from orchestration.resources import MlflowResource, WarehouseResource
from tests.conftest import query

SPEC = load_feature_spec()


@pytest.fixture(scope="module")
def tables(pipeline_run):
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as conn:
        return read_training_tables(conn, SPEC)


def test_feature_spec_is_the_dbt_contract_and_the_code_book():
    assert len(SPEC.features) == 39
    assert (SPEC.key, SPEC.split, SPEC.target) == ("num_acc", "split", "severity")
    assert SPEC.classes == {1: "unhurt", 2: "light injury", 3: "hospitalised", 4: "killed"}
    assert SPEC["lighting_code"].codes[3] == "night, no street lighting"
    # "Not recorded" codes are not accepted values: staging makes them NULL.
    assert 0 not in SPEC["intersection_code"].codes
    assert sorted(SPEC["safety_equipment_code"].codes) == [1, 2, 3, 4, 9]
    assert not {"grav", "severity", "is_severe"} & set(SPEC.names)


def test_ml_features_hold_only_code_book_codes(pipeline_run):
    for feature in SPEC.features:
        if feature.is_categorical:
            values = {
                v
                for (v,) in query(
                    pipeline_run.warehouse, f"select distinct {feature.name} from marts.ml_features"
                )
            }
            assert values - {None} <= set(feature.codes), feature.name


def test_no_feature_depends_on_any_road_users_outcome(pipeline_run, tmp_path):
    """Rewrite every user's grav in raw.users, rebuild the marts: the features must not move."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(pipeline_run.warehouse, copy)
    features = ", ".join(SPEC.names)
    order = f"select num_acc, {features} from marts.ml_features order by all"
    before = query(copy, order)
    with duckdb.connect(str(copy)) as conn:
        conn.execute(
            "update raw.users set grav = case grav when 1 then 2 when 2 then 3 when 3 then 4 else 1 end"
        )
    subprocess.run(
        [settings.dbt_executable(), "run", "--select", "+ml_features", "--profiles-dir", ".", "-q"],
        cwd=settings.DBT_PROJECT_DIR,
        check=True,
        env={**__import__("os").environ, "DUCKDB_PATH": str(copy)},
    )
    assert query(copy, "select count(*) from marts.ml_features where severity = 4") != query(
        pipeline_run.warehouse, "select count(*) from marts.ml_features where severity = 4"
    )
    assert query(copy, order) == before


def test_same_data_and_seed_give_the_same_metrics(tables):
    features, baseline = tables
    params = SeverityModelParams()
    runs = []
    for _ in range(2):
        trained = train_models(features, baseline, SPEC, params, [15, 31], log=lambda _: None)
        estimators = {MODEL: trained.model, "legacy": trained.legacy_baseline}
        runs.append((trained.selection, evaluate_on_test(estimators, features, baseline, SPEC).metrics))
    assert runs[0] == runs[1]


def test_model_beats_the_replaced_projects_approach_on_the_sample(pipeline_run):
    """The figures the README reports (macro-F1, balanced accuracy, severe ROC-AUC)."""
    evaluation = pipeline_run.result.asset_materializations_for_node("severity_model_evaluation")[0]
    table = evaluation.metadata["model_vs_baselines"].value
    rows = {
        line.split("|")[1].strip(): [float(x) for x in line.split("|")[2:-1]]
        for line in table.splitlines()[2:]
    }
    assert rows == {
        "severity_model": [0.4544, 0.4571, 0.8474],
        "legacy_random_forest": [0.3077, 0.3600, 0.7506],
        "majority_class": [0.1402, 0.2500, 0.5000],
    }


def test_pipeline_registered_a_challenger_and_made_it_champion(pipeline_run):
    uri = f"sqlite:///{pipeline_run.root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    challenger = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHALLENGER)
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION)
    assert str(challenger.version) == str(champion.version) == "1"
    assert champion.tags["promotion_decision"] == "promoted"
    assert champion.tags["promotion_reason"] == "no champion yet"
    run = client.get_run(champion.run_id)
    assert run.data.tags["data.years"] == "2016"
    assert run.data.tags["data.rows.test"] == "932"
    assert run.data.metrics["test_macro_f1"] > run.data.metrics["baseline_majority_class_test_macro_f1"]
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {
        "evaluation/confusion_matrix.png",
        "evaluation/feature_importance.png",
        "evaluation/calibration.png",
    } <= artifacts


def test_decide_promotion():
    assert registry.decide_promotion(0.4, None).promote
    assert registry.decide_promotion(0.5, 0.4).promote
    assert not registry.decide_promotion(0.4, 0.5).promote
    assert not registry.decide_promotion(0.4, 0.4).promote  # a tie keeps the champion


def materialize_ml(pipeline_run, mlflow_dir, config: dict, expect_success: bool = True):
    result = dg.materialize(
        [severity_model, severity_model_evaluation, champion_model],
        resources={
            "warehouse": WarehouseResource(path=str(pipeline_run.warehouse)),
            "mlflow_store": MlflowResource(
                tracking_uri=f"sqlite:///{mlflow_dir / 'mlflow.db'}",
                artifact_root=str(mlflow_dir / "artifacts"),
            ),
        },
        run_config={"ops": {"severity_model": {"config": config}}},
        raise_on_error=False,
    )
    if expect_success:
        assert [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure] == []
    return result


def test_promotion_first_better_worse_and_the_blocking_check(pipeline_run, tmp_path):
    weak = {"max_iter": 2, "max_leaf_nodes_candidates": [3], "learning_rate": 0.05}
    strong = {"max_leaf_nodes_candidates": [15]}
    useless = {"max_iter": 1, "max_leaf_nodes_candidates": [3], "learning_rate": 1e-9, "class_weight": None}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def champion_version():
        return str(client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION).version)

    materialize_ml(pipeline_run, tmp_path, weak)  # no champion -> promoted
    assert champion_version() == "1"
    materialize_ml(pipeline_run, tmp_path, strong)  # better -> promoted
    assert champion_version() == "2"
    assert client.get_model_version(registry.REGISTERED_MODEL, "2").tags["promotion_decision"] == "promoted"
    materialize_ml(pipeline_run, tmp_path, weak)  # worse -> kept
    assert champion_version() == "2"
    kept = client.get_model_version(registry.REGISTERED_MODEL, "3")
    assert kept.tags["promotion_decision"] == "kept_champion"
    assert float(kept.tags["challenger_score"]) < float(kept.tags["champion_score"])
    assert (
        str(client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHALLENGER).version) == "3"
    )

    # A challenger no better than always answering "unhurt" is stopped by the blocking check.
    result = materialize_ml(pipeline_run, tmp_path, useless, expect_success=False)
    assert not result.success
    check = [e for e in result.get_asset_check_evaluations() if e.check_name == "beats_majority_baseline"][0]
    assert not check.passed
    assert result.asset_materializations_for_node("champion_model") == []
    assert champion_version() == "2"


def test_a_champion_trained_on_other_features_cannot_be_scored(tables):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from ml.models import CodebookTyper
    from ml.training import score_on_test

    features, _ = tables
    old = pd.DataFrame({"retired_feature": [1.0, 2.0, 3.0, 4.0]})
    champion = Pipeline(
        [("types", CodebookTyper(columns=["retired_feature"], categories={})), ("model", DummyClassifier())]
    ).fit(old, [1, 2, 3, 4])
    assert score_on_test(champion, features, SPEC) is None
    current = Pipeline(
        [("types", CodebookTyper(columns=SPEC.names, categories={})), ("model", DummyClassifier())]
    ).fit(features[SPEC.names], features["severity"])
    assert score_on_test(current, features, SPEC) == pytest.approx(0.1402, abs=5e-5)
