"""ML assets: train the severity model and its baselines, evaluate them on the test split,
and promote the challenger to champion when it does better. Thin wrappers around ml/."""

from datetime import UTC, datetime

import dagster as dg
import mlflow
import pandas as pd
from dagster_dbt import get_asset_key_for_model

from ml import data, evaluation, plots, registry
from ml.data import baseline_columns, data_summary
from ml.features import FeatureSpec, load_feature_spec, model_input
from ml.models import SeverityModelParams
from ml.training import (
    LEGACY_BASELINE,
    MAJORITY_BASELINE,
    MODEL,
    evaluate_on_test,
    permutation_importance_on_validation,
    score_on_test,
    split_frame,
    train_models,
    typical_road_user,
)
from orchestration.assets.dbt import baac_dbt_models
from orchestration.resources import MlflowResource, WarehouseResource

ML_FEATURES_KEY = get_asset_key_for_model([baac_dbt_models], "ml_features")
BASELINE_FEATURES_KEY = get_asset_key_for_model([baac_dbt_models], "ml_baseline_features")


class TrainingConfig(dg.Config):
    """Hyper-parameters of the severity model (the baselines are fixed)."""

    learning_rate: float = SeverityModelParams.learning_rate
    max_iter: int = SeverityModelParams.max_iter
    max_leaf_nodes_candidates: list[int] = [15, 31, 63]
    min_samples_leaf: int = SeverityModelParams.min_samples_leaf
    l2_regularization: float = SeverityModelParams.l2_regularization
    n_iter_no_change: int = SeverityModelParams.n_iter_no_change
    class_weight: str | None = SeverityModelParams.class_weight
    random_state: int = SeverityModelParams.random_state

    def model_params(self) -> SeverityModelParams:
        return SeverityModelParams(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes_candidates[0],
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            n_iter_no_change=self.n_iter_no_change,
            class_weight=self.class_weight,
            random_state=self.random_state,
        )


class EvaluationConfig(dg.Config):
    """Permutation importance dominates the evaluation's time on large data."""

    importance_rows: int = 20_000  # validation rows sampled for permutation importance
    importance_repeats: int = 5


def read_training_tables(
    warehouse: WarehouseResource, spec: FeatureSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    with warehouse.get_connection(read_only=True) as conn:
        return data.read_training_tables(conn, spec)


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """Markdown: the headline metrics of the model against both baselines."""
    header = "| model | " + " | ".join(evaluation.HEADLINE_METRICS) + " |"
    lines = [header, "|---" * (len(evaluation.HEADLINE_METRICS) + 1) + "|"]
    for name, values in metrics.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in evaluation.HEADLINE_METRICS) + " |"
        )
    return "\n".join(lines)


def beats_majority(metrics: dict[str, dict[str, float]]) -> bool:
    return metrics[MODEL]["macro_f1"] > metrics[MAJORITY_BASELINE]["macro_f1"]


@dg.asset(
    group_name="ml",
    deps=[ML_FEATURES_KEY, BASELINE_FEATURES_KEY],
    kinds={"scikitlearn", "mlflow"},
)
def severity_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
) -> dg.Output[registry.TrainingRecord]:
    """Gradient boosting on ml_features (train; validation for early stopping and selection),
    and the two baselines on the same rows, logged as one MLflow run; the model becomes a
    new version of `road_accident_severity` with alias `challenger`."""
    spec = load_feature_spec()
    features, baseline = read_training_tables(warehouse, spec)
    summary = data_summary(features)
    context.log.info(f"Training on {summary['rows_per_split']} rows of years {summary['years']}")
    trained = train_models(
        features,
        baseline,
        spec,
        config.model_params(),
        config.max_leaf_nodes_candidates,
        log=context.log.info,
    )
    client = mlflow_store.client()
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    with mlflow.start_run(run_name=f"severity-{trained_at}") as run:
        mlflow.log_params(
            {
                **config.model_dump(),
                "selected_max_leaf_nodes": trained.params.max_leaf_nodes,
                "best_iteration": trained.best_iteration,
            }
        )
        mlflow.log_metrics(
            {f"validation_macro_f1_max_leaf_nodes_{k}": v for k, v in trained.selection.items()}
        )
        mlflow.set_tags(
            {
                "data.years": ",".join(map(str, summary["years"])),
                "data.fingerprint": summary["fingerprint"],
                **{f"data.rows.{split}": n for split, n in summary["rows_per_split"].items()},
            }
        )
        registry.log_json(
            {"ml_features": summary, "ml_baseline_features": data_summary(baseline)}, "data/summary.json"
        )
        registry.log_json({"features": [f.__dict__ for f in spec.features]}, "data/feature_spec.json")
        registry.log_json(typical_road_user(features, spec), registry.TYPICAL_ROAD_USER_ARTIFACT)
        example = model_input(split_frame(features, "train").head(5), spec)
        model_info = registry.log_sklearn_model(trained.model, MODEL, example, registry.REGISTERED_MODEL)
        baseline_example = split_frame(baseline, "train")[baseline_columns(baseline)].head(5)
        legacy_info = registry.log_sklearn_model(trained.legacy_baseline, LEGACY_BASELINE, baseline_example)
        majority_info = registry.log_sklearn_model(
            trained.majority_baseline, MAJORITY_BASELINE, baseline_example
        )
    version = str(model_info.registered_model_version)
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHALLENGER, version)
    for key, value in {
        "run_id": run.info.run_id,
        "trained_at": trained_at,
        "data_years": ",".join(map(str, summary["years"])),
        "data_fingerprint": summary["fingerprint"],
    }.items():
        client.set_model_version_tag(registry.REGISTERED_MODEL, version, key, value)
    record = registry.TrainingRecord(
        run_id=run.info.run_id,
        version=version,
        model_uris={
            MODEL: model_info.model_uri,
            LEGACY_BASELINE: legacy_info.model_uri,
            MAJORITY_BASELINE: majority_info.model_uri,
        },
    )
    return dg.Output(
        record,
        metadata={
            "registered_model": registry.REGISTERED_MODEL,
            "version": version,
            "alias": registry.CHALLENGER,
            "mlflow_run_id": run.info.run_id,
            "validation_macro_f1": dg.MetadataValue.json(
                {str(k): round(v, 4) for k, v in trained.selection.items()}
            ),
            "selected_max_leaf_nodes": trained.params.max_leaf_nodes,
            "best_iteration": trained.best_iteration,
            "rows_per_split": dg.MetadataValue.json(summary["rows_per_split"]),
            "data_fingerprint": summary["fingerprint"],
        },
    )


@dg.asset(
    group_name="ml",
    kinds={"scikitlearn", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            "beats_majority_baseline",
            asset="severity_model_evaluation",
            blocking=True,
            description="The challenger's test macro-F1 must beat always predicting the majority class.",
        )
    ],
)
def severity_model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    severity_model: registry.TrainingRecord,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
):
    """The model and both baselines scored on the test split only; metrics, per-class
    scores, confusion matrix, permutation importance and calibration logged to the run."""
    spec = load_feature_spec()
    features, baseline = read_training_tables(warehouse, spec)
    mlflow_store.client()
    estimators = {name: mlflow.sklearn.load_model(uri) for name, uri in severity_model.model_uris.items()}
    result = evaluate_on_test(estimators, features, baseline, spec)
    importance = permutation_importance_on_validation(
        estimators[MODEL], features, spec, config.importance_rows, config.importance_repeats
    )
    classes = sorted(spec.classes)
    labels = [spec.classes[c] for c in classes]
    with mlflow.start_run(run_id=severity_model.run_id):
        mlflow.log_metrics({f"test_{k}": v for k, v in result.metrics[MODEL].items()})
        for name in (LEGACY_BASELINE, MAJORITY_BASELINE):
            mlflow.log_metrics({f"baseline_{name}_test_{k}": v for k, v in result.metrics[name].items()})
        for code, values in result.per_class.items():
            mlflow.log_metrics(
                {f"test_{spec.classes[code].replace(' ', '_')}_{k}": v for k, v in values.items()}
            )
        registry.log_json(
            {
                "metrics": result.metrics,
                "per_class": result.per_class,
                "confusion_matrix": result.confusion.tolist(),
                "classes": labels,
            },
            "evaluation/test_metrics.json",
        )
        mlflow.log_text(importance.to_csv(), "evaluation/permutation_importance.csv")
        registry.log_figure(
            plots.confusion_matrix_figure(result.confusion, labels, "Test confusion matrix"),
            "evaluation/confusion_matrix.png",
        )
        registry.log_figure(
            plots.feature_importance_figure(importance, "Permutation importance (validation)"),
            "evaluation/feature_importance.png",
        )
        registry.log_figure(
            plots.calibration_figure(
                result.y_test, result.test_proba, classes, labels, "Calibration on the test split"
            ),
            "evaluation/calibration.png",
        )
    model, majority = result.metrics[MODEL], result.metrics[MAJORITY_BASELINE]
    report = {"version": severity_model.version, "run_id": severity_model.run_id, "metrics": result.metrics}
    yield dg.Output(
        report,
        metadata={
            **{
                f"test_{m}": round(model[m], 4)
                for m in (*evaluation.HEADLINE_METRICS, "accuracy", "log_loss")
            },
            "model_vs_baselines": dg.MetadataValue.md(metrics_table(result.metrics)),
            "top_features": dg.MetadataValue.json(importance["importance_mean"].head(10).round(4).to_dict()),
            "test_rows": int(len(result.y_test)),
            "version": severity_model.version,
        },
    )
    yield dg.AssetCheckResult(
        check_name="beats_majority_baseline",
        passed=beats_majority(result.metrics),
        metadata={"challenger_macro_f1": model["macro_f1"], "majority_macro_f1": majority["macro_f1"]},
    )


@dg.asset(group_name="ml", kinds={"mlflow"})
def champion_model(
    context: dg.AssetExecutionContext,
    severity_model_evaluation: dict,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
) -> dg.MaterializeResult:
    """Challenger and current champion scored with the same metric on the same current test
    split; the `champion` alias moves only when the challenger is better."""
    spec = load_feature_spec()
    client = mlflow_store.client()
    version = severity_model_evaluation["version"]
    scores = severity_model_evaluation["metrics"]
    challenger_score = scores[MODEL][registry.PROMOTION_METRIC]
    # The blocking check stops this asset in the run that evaluated the model; this repeats
    # it for a run that materializes champion_model alone from a stored evaluation.
    if not beats_majority(scores):
        raise dg.Failure(
            f"Version {version} does not beat the majority-class baseline on test macro-F1 "
            f"({scores[MODEL]['macro_f1']:.4f} <= {scores[MAJORITY_BASELINE]['macro_f1']:.4f}): not promoted"
        )
    champion = registry.get_version_by_alias(client, registry.CHAMPION)
    champion_version = str(champion.version) if champion is not None else None
    if champion_version == version:
        decision = registry.PromotionDecision(
            False, "already the champion", challenger_score, challenger_score
        )
    else:
        champion_score = None
        if champion_version is not None:
            features, _ = read_training_tables(warehouse, spec)
            champion_model_ = registry.load_version(champion_version)
            champion_score = score_on_test(champion_model_, features, spec, registry.PROMOTION_METRIC)
        decision = registry.decide_promotion(challenger_score, champion_score)
        if champion_version is not None and champion_score is None:
            decision = registry.PromotionDecision(
                True, f"champion {champion_version} cannot score the current features", challenger_score, None
            )
        registry.record_promotion(client, version, decision)
    current = registry.get_version_by_alias(client, registry.CHAMPION)
    context.log.info(
        f"Version {version}: {'promoted' if decision.promote else 'not promoted'} ({decision.reason})"
    )
    return dg.MaterializeResult(
        metadata={
            "champion_version": str(current.version) if current else None,
            "challenger_version": version,
            "promoted": decision.promote,
            "reason": decision.reason,
            "challenger_test_macro_f1": round(challenger_score, 4),
            "previous_champion_test_macro_f1": None if champion_score is None else round(champion_score, 4),
        }
    )
