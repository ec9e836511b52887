"""Training, registry and promotion on the sample, with a real MLflow store."""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from ml import promotion, registry
from ml.contracts import MODEL, SeverityModelParams, TrainingPlan
from ml.data import read_table, read_training_tables
from ml.evaluation import evaluate_on_test, score_on_test
from ml.features import load_feature_spec
from ml.models import CodebookTyper
from ml.training import train_models, typical_road_user
from orchestration import settings
from orchestration.assets.ml import (
    champion_model,
    severity_model,
    severity_model_evaluation,
    severity_model_robustness,
)
from orchestration.resources import MlflowResource, WarehouseResource
from tests.conftest import query

SPEC = load_feature_spec(settings.DBT_PROJECT_DIR)


@pytest.fixture(scope="module")
def tables(pipeline_run):
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as conn:
        return read_training_tables(conn, SPEC)


def test_a_mart_is_read_sorted_by_every_column_in_its_order_nulls_last():
    """Fits are reproducible only if rows come in one order, whatever order the warehouse
    stored them in: the key first, then each column in turn, NULLs last."""
    rows = [
        ("201600000002", "train", 2, None),
        ("201600000001", "test", 3, 1.5),
        ("201600000002", "train", 1, 7.0),
        ("201600000001", "test", 3, None),
        ("201600000002", "train", 1, 7.0),  # two road users alike in every column
        ("201600000001", "test", 3, -2.0),
    ]
    with duckdb.connect(":memory:") as conn:
        conn.execute("create table mart (num_acc varchar, split varchar, severity integer, speed double)")
        conn.executemany("insert into mart values (?, ?, ?, ?)", rows)
        frame = read_table(conn, "mart")
    assert list(frame.fillna({"speed": 99.0}).itertuples(index=False, name=None)) == [
        ("201600000001", "test", 3, -2.0),
        ("201600000001", "test", 3, 1.5),
        ("201600000001", "test", 3, 99.0),  # NULL: last
        ("201600000002", "train", 1, 7.0),
        ("201600000002", "train", 1, 7.0),
        ("201600000002", "train", 2, 99.0),
    ]
    assert list(frame.index) == list(range(6))


def test_a_mart_read_for_some_splits_is_those_splits_of_the_whole_read(pipeline_run, tables):
    """The evaluation reads only the splits it scores: the same rows, in the same order, as
    ``split_frame`` gives of the whole table (the index numbered anew)."""
    from ml.data import split_frame
    from ml.evaluation import EVALUATION_SPLITS, TEST_SPLITS

    features, baseline = tables
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as conn:
        some, some_baseline = read_training_tables(conn, SPEC, EVALUATION_SPLITS, TEST_SPLITS)
        for wrong in ("test", (), ("test", "tests")):
            with pytest.raises(ValueError, match="splits must be some of"):
                read_table(conn, "marts.ml_features", wrong)
    assert some["split"].value_counts().to_dict() == {"validation": 1017, "test": 932}
    assert len(some_baseline) == 932
    assert list(some.index) == list(range(len(some)))

    def rows_of(frame, split):
        return split_frame(frame, split).reset_index(drop=True)

    for split in EVALUATION_SPLITS:
        pd.testing.assert_frame_equal(rows_of(some, split), rows_of(features, split))
    pd.testing.assert_frame_equal(some_baseline, rows_of(baseline, "test"))


def test_feature_spec_is_the_dbt_contract_and_the_code_book():
    assert len(SPEC.features) == 41
    assert (SPEC.key, SPEC.split, SPEC.target) == ("num_acc", "split", "severity")
    assert SPEC.classes == {1: "unhurt", 2: "light injury", 3: "hospitalised", 4: "killed"}
    assert SPEC["lighting_code"].codes[3] == "night, no street lighting"
    # "Not recorded" codes are not accepted values: staging makes them NULL.
    assert 0 not in SPEC["intersection_code"].codes
    assert sorted(SPEC["safety_equipment_code"].codes) == [1, 2, 3, 4, 9]
    assert not {"grav", "severity", "is_severe"} & set(SPEC.names)
    assert SPEC["heaviest_other_vehicle_code"].codes[7] == "heavy goods vehicle"
    assert sorted(SPEC["heaviest_other_vehicle_code"].codes) == list(range(10))  # 0: none


def test_the_previous_feature_set_is_the_spec_without_the_newest_features():
    """The other parties came with feature set 2 (meta.since); the model they are compared
    with trains on the 39 features before them, in the same order."""
    new = {"pedestrians_in_accident", "heaviest_other_vehicle_code"}
    assert SPEC.feature_set == 2
    assert {f.name for f in SPEC.features if f.since == 2} == new
    previous = SPEC.previous_feature_set()
    assert previous.names == [name for name in SPEC.names if name not in new]
    assert len(previous.names) == 39 and previous.feature_set == 1
    assert (previous.target, previous.key, previous.classes) == (SPEC.target, SPEC.key, SPEC.classes)
    assert previous.previous_feature_set() is None


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
        [settings.dbt_executable(), "run", "--select", "+ml_features", "--profiles-dir", ".", "-q"]
        + ["--target-path", str(tmp_path / "target")],
        cwd=settings.DBT_PROJECT_DIR,
        check=True,
        env={**__import__("os").environ, "DUCKDB_PATH": str(copy)},
    )
    assert query(copy, "select count(*) from marts.ml_features where severity = 4") != query(
        pipeline_run.warehouse, "select count(*) from marts.ml_features where severity = 4"
    )
    assert query(copy, order) == before


@pytest.fixture(scope="module")
def small_model(tables):
    """A severity model of 15 iterations on the sample's train split (validation for its
    early stopping): quick to fit, for tests that only compare ways of running it."""
    from ml.models import build_severity_model, fit_severity_model
    from ml.training import split_frame

    features, _ = tables
    params = SeverityModelParams(max_iter=15, max_leaf_nodes=15, n_iter_no_change=30)
    return fit_severity_model(
        build_severity_model(SPEC, params),
        split_frame(features, "train"),
        split_frame(features, "validation"),
        SPEC,
    ).pipeline


@pytest.fixture(scope="module")
def loss_stopped_model(tables):
    """The sample's model of 15 leaves as early stopping on the validation loss leaves it,
    before the iterations after its best validation macro-F1 are cut, with that model's
    validation macro-F1 (``FittedSeverityModel``)."""
    from ml.models import build_severity_model, fit_severity_model
    from ml.training import split_frame

    features, _ = tables
    return fit_severity_model(
        build_severity_model(SPEC, SeverityModelParams(max_leaf_nodes=15)),
        split_frame(features, "train"),
        split_frame(features, "validation"),
        SPEC,
        keep_best_iteration=False,
    )


def validation_macro_f1(model, validation: pd.DataFrame) -> float:
    """The model's macro-F1 on validation rows, as the evaluation scores it."""
    from ml import metrics
    from ml.scoring import class_probabilities

    classes = sorted(SPEC.classes)
    proba = class_probabilities(model, validation[SPEC.names], classes)
    return metrics.classification_metrics(validation[SPEC.target], proba, classes)["macro_f1"]


def test_macro_f1_by_iteration_is_scikit_learns_macro_f1_after_each_iteration(tables, loss_stopped_model):
    from sklearn.metrics import f1_score

    from ml.models import macro_f1_by_iteration, staged_class_columns
    from ml.training import split_frame

    validation = split_frame(tables[0], "validation")
    (model, returned_macro_f1), classes = loss_stopped_model, sorted(SPEC.classes)
    typed = model.named_steps["types"].transform(validation[SPEC.names])
    curve = macro_f1_by_iteration(model, validation[SPEC.names], validation[SPEC.target], classes)
    booster = model.named_steps["model"]
    staged = [proba.argmax(axis=1) for proba in booster.staged_predict_proba(typed)]
    # The compiled pass predicts scikit-learn's classes after every iteration, to the row.
    compiled = list(staged_class_columns(model, validation[SPEC.names]))
    assert len(compiled) == len(staged)
    assert all((ours == theirs).all() for ours, theirs in zip(compiled, staged, strict=True))
    expected = [
        f1_score(
            validation[SPEC.target],
            booster.classes_[columns],
            labels=classes,
            average="macro",
            zero_division=0,
        )
        for columns in staged
    ]
    assert len(curve) == booster.n_iter_ == 74
    assert curve == pytest.approx(expected, abs=1e-12)
    assert curve[-1] == pytest.approx(validation_macro_f1(model, validation), abs=1e-12)
    assert returned_macro_f1 == curve[-1]  # the uncut model's figure is its last iteration's


def test_the_fitted_model_keeps_the_iterations_up_to_its_best_validation_macro_f1(tables, loss_stopped_model):
    """Early stopping on the validation loss stops the sample's model at 74 iterations; its
    validation macro-F1 peaked at 30, and the kept model is cut there: it predicts exactly
    what the booster predicted after 30 iterations."""
    import copy

    from ml.models import build_severity_model, fit_severity_model, keep_iterations
    from ml.training import split_frame

    features, _ = tables
    train, validation = split_frame(features, "train"), split_frame(features, "validation")
    kept, kept_macro_f1 = fit_severity_model(
        build_severity_model(SPEC, SeverityModelParams(max_leaf_nodes=15)), train, validation, SPEC
    )
    full = loss_stopped_model.pipeline
    assert (kept.named_steps["model"].n_iter_, full.named_steps["model"].n_iter_) == (30, 74)
    X = features[SPEC.names]
    typed = full.named_steps["types"].transform(X)
    (after_30,) = [
        p for i, p in enumerate(full.named_steps["model"].staged_predict_proba(typed), 1) if i == 30
    ]
    assert (kept.predict_proba(X) == after_30).all()
    assert len(kept.named_steps["model"].validation_score_) == 31
    # The macro-F1 returned with the model is the kept model's, found without scoring again.
    assert kept_macro_f1 == pytest.approx(validation_macro_f1(kept, validation), abs=1e-12)
    assert kept_macro_f1 > validation_macro_f1(full, validation)
    for iterations in (0, 75):
        with pytest.raises(ValueError, match=f"cannot keep {iterations} of 74 iterations"):
            keep_iterations(copy.deepcopy(full), iterations)


def test_cross_validation_folds_side_by_side_give_the_figures_of_folds_in_a_row(
    tables, small_model, monkeypatch
):
    """Folds run on threads, one per core, each fit seeded and on one OpenMP thread: the
    figures do not depend on how many run at once."""
    from ml import crossval, threads

    features, _ = tables
    fitted = small_model
    monkeypatch.setattr(threads, "SIDE_BY_SIDE_MIN_ROWS", 0)  # the sample's folds are small
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    side_by_side = crossval.cross_validate(fitted, features, SPEC, folds=3)
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    in_a_row = crossval.cross_validate(fitted, features, SPEC, folds=3)
    # ... nor on how many OpenMP threads each fold's fit takes.
    monkeypatch.setattr(threads, "SIDE_BY_SIDE_MIN_ROWS", 10**9)
    monkeypatch.setattr(threads, "SINGLE_THREAD_MAX_TRAINING_ROWS", 0)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert crossval.cross_validate(fitted, features, SPEC, folds=3).folds == in_a_row.folds
    assert side_by_side.folds == in_a_row.folds and len(in_a_row.folds) == 3


def test_each_fold_is_trained_as_the_final_model_on_accidents_of_its_own(tables, small_model):
    """A fold's model is fitted by the training procedure (early stopping on a validation
    split, then the iterations up to its best macro-F1), its validation the next fold (a
    quarter of the fold's fitting accidents with 5 folds) and its train the other three:
    not the final model's number of iterations, which overfits folds far smaller than the
    training split."""
    from sklearn.base import clone

    from ml import crossval, metrics
    from ml.calibration import uncalibrated
    from ml.models import fit_severity_model
    from ml.scoring import class_probabilities

    features, _ = tables
    cv = crossval.cross_validate(small_model, features, SPEC, folds=5)
    rows = features[features["split"].isin(["train", "validation"])].reset_index(drop=True)
    held_out = [scored for _, scored in crossval.grouped_folds(rows["num_acc"], rows["severity"], 5, 42)]
    scored, validation = rows.iloc[held_out[0]], rows.iloc[held_out[1]]
    train = rows.iloc[sorted(np.concatenate(held_out[2:]))]
    accidents = [set(part["num_acc"]) for part in (train, validation, scored)]
    assert not (accidents[0] & accidents[1] or accidents[0] & accidents[2] or accidents[1] & accidents[2])
    assert len(validation) / (len(train) + len(validation)) == pytest.approx(0.25, abs=0.03)
    model = fit_severity_model(clone(uncalibrated(small_model)), train, validation, SPEC).pipeline
    classes = sorted(SPEC.classes)
    expected = metrics.classification_metrics(
        scored["severity"], class_probabilities(model, scored[SPEC.names], classes), classes
    )
    assert cv.folds[0] == {
        "macro_f1": expected["macro_f1"],
        "severe_roc_auc": expected["severe_roc_auc"],
        "iterations": model.named_steps["model"].n_iter_,
    }
    assert list(cv.table().columns) == ["fold", "macro_f1", "severe_roc_auc", "iterations"]


def test_the_last_fold_stops_on_the_first_and_two_folds_are_refused(tables, small_model):
    from ml import crossval

    held_out = [np.array([4, 0]), np.array([3]), np.array([1, 2])]
    train, validation, scored = crossval.train_validation_scored(held_out, 2)
    assert (train.tolist(), validation.tolist(), scored.tolist()) == ([3], [4, 0], [1, 2])
    with pytest.raises(ValueError, match="at least 3 folds"):
        crossval.cross_validate(small_model, tables[0], SPEC, folds=2)


def test_permutation_importance_on_threads_gives_the_figures_of_one_thread(tables, small_model, monkeypatch):
    """Features are shuffled and scored on threads, one per core: each feature's shuffles
    are seeded, so the figures do not depend on how many threads."""
    from ml import evaluation

    features, _ = tables
    fitted = small_model
    importance = {}
    for cores in (1, 2):
        monkeypatch.setattr(evaluation, "available_cores", lambda cores=cores: cores)
        importance[cores] = evaluation.permutation_importance_on_validation(fitted, features, SPEC, repeats=3)
    pd.testing.assert_frame_equal(importance[1], importance[2], check_exact=True)
    assert importance[1]["importance_mean"].abs().max() > 0


def test_training_side_by_side_gives_the_models_of_training_in_a_row(tables, monkeypatch):
    """Candidates, and the refit beside the previous feature set's fit, run side by side at
    national size (ml.threads), each on one OpenMP thread: the same models as one after the
    other on two threads each, to the last bit."""
    from ml import threads

    features, baseline = tables
    params = SeverityModelParams(max_iter=20, n_iter_no_change=30)
    plan = TrainingPlan(max_leaf_nodes_candidates=(7, 15), selection_rows=1_500, final_fit_rows=3_000)
    monkeypatch.setattr(threads, "SIDE_BY_SIDE_MIN_ROWS", 0)
    side_by_side = train_models(features, baseline, SPEC, params, plan, log=lambda _: None)
    # In a row, each fit on every core (as a lone fit of national size runs).
    monkeypatch.setattr(threads, "SIDE_BY_SIDE_MIN_ROWS", 10**9)
    monkeypatch.setattr(threads, "SINGLE_THREAD_MAX_TRAINING_ROWS", 0)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    in_a_row = train_models(features, baseline, SPEC, params, plan, log=lambda _: None)
    assert side_by_side.selection == in_a_row.selection and len(in_a_row.selection) == 2
    assert side_by_side.validation_macro_f1 == in_a_row.validation_macro_f1
    X = features[SPEC.names]
    for model in ("model", "previous_feature_set_model"):
        expected = getattr(in_a_row, model).predict_proba(X)
        assert (getattr(side_by_side, model).predict_proba(X) == expected).all()


def test_the_typical_road_user_is_one_real_row_of_train(tables):
    """Not each column's mode taken alone (a driver on a pedestrian crossing): the train row
    whose values are together the most frequent, here a 26-year-old driver of a car, belted."""
    features, _ = tables
    typical = typical_road_user(features, SPEC)
    train = features[features["split"] == "train"]
    same = (
        train[SPEC.names]
        .astype("float64")
        .fillna(-1.0)
        .eq(pd.Series({k: -1.0 if v is None else float(v) for k, v in typical.items()}))
    )
    assert train.loc[same.all(axis=1), "num_acc"].tolist() == [201600001180]
    decoded = {
        name: SPEC[name].codes[typical[name]] for name in ("user_category_code", "vehicle_category_code")
    }
    assert decoded == {
        "user_category_code": "driver",
        "vehicle_category_code": "car / light vehicle (VL) alone",
    }
    assert (typical["age"], typical["safety_equipment_code"], typical["pedestrian_location_code"]) == (
        26,
        1,
        0,
    )
    assert (typical["month"], typical["day_of_week"], typical["hour"]) == (12, 5, 8)


def test_same_data_and_seed_give_the_same_metrics(tables):
    features, baseline = tables
    params = SeverityModelParams()
    runs = []
    for _ in range(2):
        trained = train_models(
            features,
            baseline,
            SPEC,
            params,
            TrainingPlan(max_leaf_nodes_candidates=(15, 31)),
            log=lambda _: None,
        )
        estimators = {MODEL: trained.model, "legacy": trained.legacy_baseline}
        runs.append((trained.selection, evaluate_on_test(estimators, features, baseline, SPEC).metrics))
    assert runs[0] == runs[1]


def test_model_beats_the_replaced_projects_approach_on_the_sample(pipeline_run):
    """The model's reason to exist, stated as intent: on the same test rows it beats the
    replaced project's random forest clearly, which beats the majority class. (The exact
    figures are the README's, checked by test_readme_figures.)"""
    (evaluation,) = pipeline_run.result.asset_materializations_for_node("severity_model_evaluation")
    metrics = {
        name.removeprefix("test_"): value.value
        for name, value in evaluation.metadata.items()
        if name.startswith("test_") and isinstance(value.value, float)
    }
    table = evaluation.metadata["model_vs_baselines"].value
    # Each cell: the figure, then its 95% bootstrap interval in brackets.
    rows = {
        line.split("|")[1].strip(): [float(x.split()[0]) for x in line.split("|")[2:-1]]
        for line in table.splitlines()[2:]
    }
    assert list(rows) == ["severity_model", "previous_feature_set", "legacy_random_forest", "majority_class"]
    model, legacy, majority = rows["severity_model"], rows["legacy_random_forest"], rows["majority_class"]
    assert model[0] == round(metrics["macro_f1"], 4)
    assert model[0] > legacy[0] + 0.05 > majority[0] + 0.05  # macro-F1
    assert model[1] > legacy[1] > majority[1] == 0.25  # balanced accuracy: chance is 1/4
    assert model[2] > legacy[2] > majority[2] == 0.5  # severe ROC-AUC: chance is 1/2


def test_class_weighting_raises_the_recall_of_killed(tables):
    """Killed is 7% of road users: without class weights the model all but ignores it."""
    from ml.data import split_frame
    from ml.metrics import per_class_metrics
    from ml.models import build_severity_model, fit_severity_model

    features, _ = tables
    train, validation = split_frame(features, "train"), split_frame(features, "validation")
    recall = {}
    for class_weight in ("balanced", None):
        params = SeverityModelParams(class_weight=class_weight, max_leaf_nodes=15)
        model = fit_severity_model(build_severity_model(SPEC, params), train, validation, SPEC).pipeline
        proba = model.predict_proba(validation[SPEC.names])
        recall[class_weight] = per_class_metrics(validation["severity"], proba, sorted(SPEC.classes))[4][
            "recall"
        ]
    assert recall["balanced"] > 2 * recall[None]
    assert recall["balanced"] > recall[None] + 0.1


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
    metrics = run.data.metrics
    assert metrics["test_macro_f1"] > metrics["test_macro_f1__majority_class"]
    # Every figure with its bootstrap interval over test accidents, the baselines' too.
    for suffix in ("", "__legacy_random_forest"):
        for name in ("macro_f1", "severe_roc_auc", "top_label_ece", "severe_ece"):
            low, high = metrics[f"test_{name}_ci_low{suffix}"], metrics[f"test_{name}_ci_high{suffix}"]
            assert low <= metrics[f"test_{name}{suffix}"] <= high, (name, suffix)
    # The grouped cross-validation of train + validation, beside the single split.
    assert 0 < metrics["cv_macro_f1_std"] < 0.1 < metrics["cv_macro_f1_mean"]
    assert run.data.params["calibration_method"] == "none"  # auto: it does not help here
    # The same gradient boosting without the other parties, scored on the same test rows.
    assert "test_macro_f1__previous_feature_set" in metrics
    # ... and the gain over it with its paired interval over test accidents.
    for metric in ("macro_f1", "severe_roc_auc"):
        gain = f"test_{metric}_gain_over_previous_feature_set"
        assert metrics[f"{gain}_ci_low"] < metrics[gain] < metrics[f"{gain}_ci_high"]
    assert set(metrics) >= {
        "validation_macro_f1__severity_model",
        "validation_macro_f1__previous_feature_set",
    }
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {
        "evaluation/confusion_matrix.png",
        "evaluation/feature_importance.png",
        "evaluation/calibration.png",
        "evaluation/explanation_importance.csv",
        "evaluation/explanation_importance.png",
        "evaluation/test_metric_intervals.csv",
        "evaluation/cross_validation.csv",
    } <= artifacts
    data = {a.path for a in client.list_artifacts(champion.run_id, "data")}
    assert registry.REFERENCE_ROAD_USER_ARTIFACT in data  # what the API explains against
    # The model's environment names the pip release (MLflow warned when it could not).
    stored = client.get_model_version_download_uri(champion.name, champion.version)
    conda = mlflow.artifacts.download_artifacts(f"{stored}/conda.yaml", tracking_uri=uri)
    assert f"pip<={version('pip')}" in yaml.safe_load(Path(conda).read_text())["dependencies"]


#: No bootstrap intervals, importance on a few rows.
LIGHT_EVALUATION = {
    "bootstrap_resamples": 0,
    "importance_rows": 200,
    "importance_repeats": 1,
    "explanation_rows": 50,
}


def materialize_ml(
    pipeline_run,
    mlflow_dir,
    config: dict,
    expect_success: bool = True,
    selection=None,
    instance=None,
    robustness: dict | None = None,
):
    """The ML chain on the pipeline's warehouse; ``robustness``: the robustness asset's
    config, to materialize it too (cross-validation and out-of-time fit: left out otherwise)."""
    extra = [] if robustness is None else [severity_model_robustness]
    result = dg.materialize(
        [severity_model, severity_model_evaluation, champion_model, *extra],
        selection=selection,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(path=str(pipeline_run.warehouse)),
            "mlflow_store": MlflowResource(
                tracking_uri=f"sqlite:///{mlflow_dir / 'mlflow.db'}",
                artifact_root=str(mlflow_dir / "artifacts"),
            ),
        },
        # The evaluation at its smallest: these tests are about training and promotion (the
        # pipeline's run, with every figure, is checked above).
        run_config={
            "ops": {
                "severity_model": {"config": config},
                "severity_model_evaluation": {"config": LIGHT_EVALUATION},
                **({} if robustness is None else {"severity_model_robustness": {"config": robustness}}),
            }
        }
        if config is not None
        else None,
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
    promoted = client.get_model_version(registry.REGISTERED_MODEL, "2").tags
    assert promoted["promotion_decision"] == "promoted"
    # The gain, with its paired bootstrap interval over the test accidents, is recorded.
    gain = float(promoted["challenger_score"]) - float(promoted["champion_score"])
    low, high = float(promoted["gain_ci_low"]), float(promoted["gain_ci_high"])
    assert low <= gain <= high
    assert promoted["gain_beyond_noise"] == str(low > 0).lower()
    assert ("beyond the noise" if low > 0 else "within the noise") in promoted["promotion_reason"]
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


def test_materializing_champion_model_again_says_already_the_champion(pipeline_run, tmp_path):
    """The UI's "Materialize" on champion_model alone, after a run that promoted: a re-run
    must not fail (it once read the champion's score before assigning it)."""
    instance = dg.DagsterInstance.ephemeral()
    materialize_ml(pipeline_run, tmp_path, {"max_leaf_nodes_candidates": [15]}, instance=instance)
    for _ in range(2):
        result = materialize_ml(pipeline_run, tmp_path, None, selection=[champion_model], instance=instance)
        (materialization,) = result.asset_materializations_for_node("champion_model")
        assert materialization.metadata["outcome"].value == promotion.ALREADY_CHAMPION
        assert materialization.metadata["reason"].value == "already the champion"
        assert materialization.metadata["champion_version"].value == "1"


def test_a_champion_trained_on_other_features_cannot_be_scored(tables):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

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


def test_an_unchanged_training_makes_no_new_version(pipeline_run, tmp_path):
    """Same data, feature specification, code and parameters as the champion: the second run
    says so and registers nothing; force_retrain trains anyway."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    config = {"max_leaf_nodes_candidates": [15]}
    materialize_ml(pipeline_run, tmp_path, config)
    again = materialize_ml(pipeline_run, tmp_path, config)
    (training,) = again.asset_materializations_for_node("severity_model")
    assert training.metadata["retrained"].value is False
    assert training.metadata["version"].value == "1"
    (decision,) = again.asset_materializations_for_node("champion_model")
    assert decision.metadata["outcome"].value == promotion.ALREADY_CHAMPION
    assert [
        str(v.version) for v in client.search_model_versions(f"name = '{registry.REGISTERED_MODEL}'")
    ] == ["1"]
    forced = materialize_ml(pipeline_run, tmp_path, {**config, "force_retrain": True})
    assert forced.asset_materializations_for_node("severity_model")[0].metadata["version"].value == "2"


def test_the_robustness_of_a_reused_champion_is_read_back_from_its_run(pipeline_run, tmp_path):
    """The cross-validation and the out-of-time figures are logged to the challenger's run
    by their own asset; when training reuses the champion they are read back, not recomputed."""
    from orchestration.report import cross_validation_lines

    def materialize_robustness():
        result = materialize_ml(
            pipeline_run, tmp_path, {"max_leaf_nodes_candidates": [15]}, robustness={"cv_folds": 3}
        )
        (materialization,) = result.asset_materializations_for_node("severity_model_robustness")
        return {name: value.value for name, value in materialization.metadata.items()}

    first, again = materialize_robustness(), materialize_robustness()
    assert first["cv_folds"] == 3 and first["cv_rows"] == 4066
    assert first["oot_cut"] == "one year only: 2016 months 10-12 scored by a model trained on months 1-9"
    figures = [name for name in first if name.startswith(("cv_macro", "cv_severe", "oot_"))]
    assert len(figures) == 8  # mean and std of two metrics, three out-of-time metrics and the cut
    assert {name: again[name] for name in figures} == {name: first[name] for name in figures}
    assert "cv_seconds" not in again  # read back, not run again
    assert cross_validation_lines(again) == [
        "Grouped cross-validation by accident on train + validation, mean +/- std: "
        f"macro-F1 {first['cv_macro_f1_mean']:.4f} +/- {first['cv_macro_f1_std']:.4f}, "
        f"severe ROC-AUC {first['cv_severe_roc_auc_mean']:.4f} +/- {first['cv_severe_roc_auc_std']:.4f}"
    ]
    assert cross_validation_lines(first)[0].startswith(
        "Grouped 3-fold cross-validation by accident on train + validation (4,066 road users, "
    )


def test_what_a_crash_left_in_mlflow_is_cleaned(tmp_path):
    import mlflow
    from sklearn.dummy import DummyClassifier

    client = registry.configure_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with mlflow.start_run():
        info = registry.log_sklearn_model(DummyClassifier().fit(frame, [1, 2]), "model", frame)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT).experiment_id
    crashed = client.create_run(experiment).info.run_id  # killed while logging: never ended
    client.create_registered_model(registry.REGISTERED_MODEL)
    half = client.create_model_version(registry.REGISTERED_MODEL, info.model_uri, run_id=crashed)  # no tags
    notes = registry.clean_debris(client)
    assert notes == [
        f"run {crashed} was left RUNNING by a crash: marked FAILED",
        f"version {half.version} was registered without its tags by a crash: deleted",
    ]
    assert client.get_run(crashed).info.status == "FAILED"
    assert client.search_model_versions(f"name = '{registry.REGISTERED_MODEL}'") == []
