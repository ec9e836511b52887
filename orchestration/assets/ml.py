"""ML assets: train the severity model and its baselines, evaluate them on the test split,
promote the challenger to champion when it does better, and measure how far its figures
hold beyond the split (cross-validation, out of time). Each asset wires its inputs,
config and outputs; the work is in ml/ (training, evaluation, tracking, promotion).

At load this module reads the ML layer's plain types (ml.contracts, ml.features,
ml.promotion): scikit-learn, MLflow, matplotlib and pandas are imported by the asset that
uses them, when it runs. Loading the code location
(every Dagster process: the UI's code server, the daemon's sensors, a run of the raw or dbt
assets) is then seconds shorter.
"""

import dataclasses
import typing
from collections.abc import Sequence

import dagster as dg
from pydantic import create_model

from ml import promotion
from ml.contracts import (
    BASELINE_FEATURES,
    BOOTSTRAP_RESAMPLES,
    GLOBAL_IMPORTANCE_ROWS,
    MAJORITY_BASELINE,
    ML_FEATURES,
    MODEL,
    PREVIOUS_FEATURE_SET,
    EvaluationReport,
    SeverityModelParams,
    TrainingPlan,
    TrainingRecord,
)
from ml.features import FeatureSpec, load_feature_spec
from orchestration import settings
from orchestration.assets.dbt import relation_asset_key
from orchestration.resources import MlflowResource, WarehouseResource

if typing.TYPE_CHECKING:
    import pandas as pd

    from ml.out_of_time import OutOfTimeResult


def _config_fields(cls, exclude: tuple[str, ...] = ()) -> dict:
    """Launchpad fields from a dataclass of ml/: its names, types and defaults (tuples become
    lists, which Dagster config knows)."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        kind, default = hints[field.name], field.default
        if typing.get_origin(kind) is tuple:
            kind, default = list[typing.get_args(kind)[0]], list(default)
        fields[field.name] = (kind, default)
    return fields


#: The gradient boosting's hyper-parameters and the training plan as Launchpad config, derived
#: from SeverityModelParams and TrainingPlan; max_leaf_nodes is chosen among the candidates.
TrainingConfig = create_model(
    "TrainingConfig",
    __base__=dg.Config,
    __doc__="Hyper-parameters of the severity model and how training spends its time.",
    **_config_fields(SeverityModelParams, exclude=("max_leaf_nodes",)),
    **_config_fields(TrainingPlan),
    # Train even when data, feature specification, code and parameters are the champion's.
    force_retrain=(bool, False),
)


def model_params(config) -> SeverityModelParams:
    """The config as model parameters (max_leaf_nodes: the first candidate, until selection)."""
    values = config.model_dump()
    names = {f.name for f in dataclasses.fields(SeverityModelParams)}
    return SeverityModelParams(
        max_leaf_nodes=values["max_leaf_nodes_candidates"][0],
        **{k: v for k, v in values.items() if k in names},
    )


def training_plan(config) -> TrainingPlan:
    values = config.model_dump()
    return TrainingPlan(
        **{
            f.name: tuple(values[f.name]) if isinstance(values[f.name], list) else values[f.name]
            for f in dataclasses.fields(TrainingPlan)
        }
    )


class EvaluationConfig(dg.Config):
    """On national data the bootstrap (about 20-25 s) and the scoring of the test split by
    the four models (about 15 s) dominate the evaluation's time."""

    # Validation rows sampled for permutation importance: 41 features x 5 repeats = 205 scorings,
    # and a national model (316 iterations, 1,264 trees) scores about 50,000 rows a second on 2 cores.
    importance_rows: int = 2_000
    importance_repeats: int = 5
    # Validation rows the explanations' global importance averages over (ml.explain): each
    # costs features + 1 scorings, batched.
    explanation_rows: int = GLOBAL_IMPORTANCE_ROWS
    # Bootstrap resamples of the test accidents behind each metric's 95% interval (0: none).
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES


class RobustnessConfig(dg.Config):
    """On national data the out-of-time fit (about 50 s on one core) is the robustness
    asset's time; the cross-validation (about 25 s) runs beside it and ends first."""

    # Folds of the grouped cross-validation on train + validation (0: none), on at most
    # cv_rows road users of whole accidents (as model selection caps its rows).
    cv_folds: int = 5
    cv_rows: int = 30_000


def feature_spec() -> FeatureSpec:
    return load_feature_spec(settings.DBT_PROJECT_DIR)


def read_training_tables(
    warehouse: WarehouseResource,
    spec: FeatureSpec,
    splits: Sequence[str] | None = None,
    baseline_splits: Sequence[str] | None = None,
) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """Both marts, of the given splits only (default: every row)."""
    from ml import data

    with warehouse.get_connection(read_only=True) as conn:
        return data.read_training_tables(conn, spec, splits, baseline_splits)


def read_features(
    warehouse: WarehouseResource, spec: FeatureSpec, splits: Sequence[str] | None = None
) -> "pd.DataFrame":
    """ml_features alone, for the assets that do not score the baselines."""
    from ml import data

    with warehouse.get_connection(read_only=True) as conn:
        return data.read_features(conn, spec, splits)


def run_link(client, run_id: str) -> dg.MetadataValue:
    """A link to the run in the MLflow UI."""
    experiment = client.get_run(run_id).info.experiment_id
    return dg.MetadataValue.url(f"{settings.mlflow_ui_url()}/#/experiments/{experiment}/runs/{run_id}")


def ranked_importance(importance: "pd.DataFrame", top: int = 10) -> dg.MetadataValue:
    """The most important features, in rank order (a JSON object would be shown sorted by name)."""
    rows = [
        f"| {rank} | {name} | {row.importance_mean:.4f} | {row.importance_std:.4f} |"
        for rank, (name, row) in enumerate(importance.head(top).iterrows(), start=1)
    ]
    header = "| rank | feature | drop in validation macro-F1 | std |\n|---|---|---|---|\n"
    return dg.MetadataValue.md(header + "\n".join(rows))


@dg.asset(
    group_name="ml",
    deps=[relation_asset_key(ML_FEATURES), relation_asset_key(BASELINE_FEATURES)],
    kinds={"scikitlearn", "mlflow"},
)
def severity_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
) -> dg.Output[TrainingRecord]:
    """Gradient boosting on ml_features (train; validation for early stopping and selection),
    and the two baselines on the same rows, logged as one MLflow run; the model becomes a
    new version of `road_accident_severity` with alias `challenger`."""
    from ml import data, registry, tracking
    from ml.training import train_models

    spec = feature_spec()
    features, baseline = read_training_tables(warehouse, spec)
    client = mlflow_store.client()
    for note in registry.clean_debris(client):
        context.log.warning(note)
    settings_of_model = config.model_dump(exclude={"force_retrain"})
    signature = tracking.training_signature(data.fingerprint(features), spec, settings_of_model)
    record = None if config.force_retrain else tracking.reuse_champion(client, signature)
    if record is not None:
        context.log.info(
            f"Nothing changed since champion version {record.version} was trained (same data, feature "
            "specification, code and parameters): no new version. force_retrain=True trains anyway."
        )
        return dg.Output(
            record,
            metadata={
                "registered_model": registry.REGISTERED_MODEL,
                "version": record.version,
                "retrained": False,
                "reason": "same data, feature specification, code and parameters as the champion",
                "mlflow_run": run_link(client, record.run_id),
                "training_signature": signature,
            },
        )
    trained = train_models(
        features,
        baseline,
        spec,
        model_params(config),
        training_plan(config),
        log=context.log.info,
    )
    record = tracking.log_training_run(
        client, trained, features, baseline, spec, settings_of_model, signature
    )
    return dg.Output(
        record,
        metadata={
            "registered_model": registry.REGISTERED_MODEL,
            "version": record.version,
            "alias": registry.CHALLENGER,
            "mlflow_run": run_link(client, record.run_id),
            "validation_macro_f1": dg.MetadataValue.json(
                {str(k): round(v, 4) for k, v in trained.selection.items()}
            ),
            "validation_macro_f1_by_feature_set": dg.MetadataValue.json(
                {k: round(v, 4) for k, v in trained.validation_macro_f1.items()}
            ),
            "selected_max_leaf_nodes": trained.params.max_leaf_nodes,
            "best_iteration": trained.best_iteration,
            "fit_train_rows": trained.fit_rows,
            "rows_per_split": dg.MetadataValue.json(record.data["rows_per_split"]),
            "data_fingerprint": record.data["fingerprint"],
            "retrained": True,
            "training_signature": signature,
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
    config: EvaluationConfig,
    severity_model: TrainingRecord,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
):
    """The model and both baselines scored on the test split only, each metric with its 95%
    bootstrap interval over test accidents; per-class scores, confusion matrix, permutation
    importance, calibration and the explanations' global importance (ml.explain, against the
    reference road user stored by training) logged to the run. What promotion reads: the
    cross-validation and the out-of-time figures are `severity_model_robustness`'s."""
    import mlflow

    from ml import explain, registry, tracking
    from ml.evaluation import (
        EVALUATION_SPLITS,
        TEST_SPLITS,
        evaluate_on_test,
        paired_gains_in_evaluation,
        permutation_importance_on_validation,
    )
    from ml.metrics import metrics_table

    spec = feature_spec()
    # The importances of a reused champion are in its run already: test alone is scored.
    splits = TEST_SPLITS if severity_model.reused else EVALUATION_SPLITS
    features, baseline = read_training_tables(warehouse, spec, splits, TEST_SPLITS)
    client = mlflow_store.client()
    estimators = {name: mlflow.sklearn.load_model(uri) for name, uri in severity_model.model_uris.items()}
    importance, feature_set_gains = None, {}
    result = evaluate_on_test(estimators, features, baseline, spec, config.bootstrap_resamples)
    if severity_model.reused:  # the champion's evaluation is already in its run
        report = EvaluationReport(
            severity_model.version,
            severity_model.run_id,
            result.metrics,
            result.beats_majority,
            result.intervals,
        )
    else:
        importance = permutation_importance_on_validation(
            estimators[MODEL], features, spec, config.importance_rows, config.importance_repeats
        )
        report = tracking.log_evaluation(severity_model, result, importance, spec)
        reference = registry.read_json_artifact(
            client, severity_model.run_id, registry.REFERENCE_ROAD_USER_ARTIFACT
        )
        if reference is not None:  # stored by the training run (ml.tracking)
            contributions = explain.global_importance(
                estimators[MODEL], features, reference, spec, config.explanation_rows
            )
            tracking.log_explanation_importance(severity_model, contributions)
        if PREVIOUS_FEATURE_SET in estimators and config.bootstrap_resamples:
            feature_set_gains = paired_gains_in_evaluation(
                result, MODEL, PREVIOUS_FEATURE_SET, FEATURE_SET_GAIN_METRICS
            )
            tracking.log_feature_set_gain(severity_model, feature_set_gains)
    intervals = report.intervals.get(MODEL, {})
    yield dg.Output(
        report,
        metadata={
            **{f"test_{name}": round(value, 4) for name, value in report.model_metrics.items()},
            **{
                f"test_{name}_ci_{end}": round(value, 4)
                for name, interval in intervals.items()
                for end, value in zip(("low", "high"), interval, strict=True)
            },
            "model_vs_baselines": dg.MetadataValue.md(metrics_table(report.metrics, report.intervals)),
            **({} if importance is None else {"top_features": ranked_importance(importance)}),
            "test_rows": int(len(result.y_test)),
            "version": report.version,
            **{
                f"test_{metric}_gain_over_previous_feature_set{end}": round(value, 4)
                for metric, gain in feature_set_gains.items()
                for end, value in (("", gain.gain), ("_ci_low", gain.low), ("_ci_high", gain.high))
            },
        },
    )
    yield dg.AssetCheckResult(
        check_name="beats_majority_baseline",
        passed=report.beats_majority,
        metadata={
            "challenger_macro_f1": report.metrics[MODEL]["macro_f1"],
            "majority_macro_f1": report.metrics[MAJORITY_BASELINE]["macro_f1"],
        },
    )


@dg.asset(group_name="ml", kinds={"scikitlearn", "mlflow"})
def severity_model_robustness(
    context: dg.AssetExecutionContext,
    config: RobustnessConfig,
    severity_model: TrainingRecord,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
) -> dg.MaterializeResult:
    """How far the challenger's figures hold beyond the one test split, logged to its run: a
    grouped cross-validation by accident on train + validation (how much they move from one
    set of accidents to another) and the out-of-time figures (a model of its configuration
    trained on the older accidents, scored on the newest period). Promotion does not wait
    for them: it compares models on the test split (`severity_model_evaluation`)."""
    import mlflow

    from ml import out_of_time, tracking
    from ml.crossval import cross_validate
    from ml.threads import beside

    client = mlflow_store.client()
    if severity_model.reused:  # the champion's figures are already in its run
        context.log.info(f"Version {severity_model.version} reused: its figures are read back from its run")
        return dg.MaterializeResult(metadata=logged_robustness_metadata(client, severity_model.run_id))
    spec = feature_spec()
    features = read_features(warehouse, spec)
    model = mlflow.sklearn.load_model(severity_model.model_uris[MODEL])
    cross_validation = None
    # The out-of-time fit on one core beside the cross-validation (ml.threads.beside).
    with beside(out_of_time.evaluate_out_of_time, model, features, spec) as out_of_time_fit:
        if config.cv_folds:
            cross_validation = cross_validate(model, features, spec, config.cv_folds, config.cv_rows)
            tracking.log_cross_validation(severity_model, cross_validation)
    return dg.MaterializeResult(
        metadata={
            **(
                {}
                if cross_validation is None
                else {
                    **{name: round(value, 4) for name, value in cross_validation.summary().items()},
                    "cv_folds": len(cross_validation.folds),
                    "cv_rows": cross_validation.rows,
                    "cv_seconds": round(cross_validation.seconds, 1),
                }
            ),
            **out_of_time_metadata(severity_model.run_id, out_of_time_fit.result()),
            "version": severity_model.version,
        }
    )


def out_of_time_metadata(run_id: str, result: "OutOfTimeResult | None") -> dict:
    """The challenger's out-of-time figures (ml.out_of_time), logged to its run."""
    from ml import out_of_time

    if result is None:
        return {"oot_cut": "none: the data holds a single month"}
    out_of_time.log_out_of_time(run_id, result)
    return _out_of_time_figures(result.mlflow_metrics(), result.cut.description)


def logged_robustness_metadata(client, run_id: str) -> dict:
    """A reused champion's cross-validation and out-of-time figures, read back from its run."""
    run = client.get_run(run_id).data
    cross_validation = {k: round(v, 4) for k, v in run.metrics.items() if k.startswith("cv_")}
    out_of_time_values = {k: v for k, v in run.metrics.items() if k.startswith("oot_")}
    return {**cross_validation, **_out_of_time_figures(out_of_time_values, run.params.get("oot_cut"))}


def _out_of_time_figures(values: dict[str, float], cut: str | None) -> dict:
    return {
        **{name: round(values[name], 4) for name in OUT_OF_TIME_METADATA if name in values},
        **({"oot_cut": cut} if cut else {}),
    }


#: The test metrics on which the newest feature set's gain is measured, with a paired interval.
FEATURE_SET_GAIN_METRICS = ("macro_f1", "severe_roc_auc")

#: The out-of-time metrics shown on the robustness asset (numbers: the UI plots them).
OUT_OF_TIME_METADATA = ("oot_macro_f1", "oot_severe_roc_auc", "oot_balanced_accuracy")


@dg.asset(group_name="ml", kinds={"mlflow"})
def champion_model(
    context: dg.AssetExecutionContext,
    severity_model_evaluation: EvaluationReport,
    warehouse: WarehouseResource,
    mlflow_store: MlflowResource,
) -> dg.MaterializeResult:
    """Challenger and current champion scored with the same metric on the same current test
    split; the `champion` alias moves only when the challenger is better (ml.promotion)."""
    from ml import registry
    from ml.evaluation import TEST_SPLITS, paired_gain_on_test

    report = severity_model_evaluation
    client = mlflow_store.client()
    champion_version = registry.alias_version(client, registry.CHAMPION)
    gain = None
    if champion_version not in (None, report.version) and report.beats_majority:
        spec = feature_spec()
        features = read_features(warehouse, spec, TEST_SPLITS)
        # Both on the same test accidents and the same bootstrap resamples (a paired bootstrap).
        gain = paired_gain_on_test(
            registry.load_version(report.version),
            registry.load_version(champion_version),
            features,
            spec,
            promotion.PROMOTION_METRIC,
        )
    decision = promotion.decide_promotion(
        report.version,
        report.model_metrics[promotion.PROMOTION_METRIC],
        report.beats_majority,
        champion_version,
        None if gain is None else gain.champion_score,
        None if gain is None else (gain.low, gain.high),
    )
    # The blocking check stops this asset in the run that evaluated the model; this repeats
    # it for a run that materializes champion_model alone from a stored evaluation.
    if decision.outcome == promotion.REFUSED:
        raise dg.Failure(f"{decision.reason}: not promoted")
    if decision.outcome != promotion.ALREADY_CHAMPION:
        registry.record_promotion(client, report.version, decision)
    context.log.info(
        f"Version {report.version}: {'promoted' if decision.promote else 'not promoted'} ({decision.reason})"
    )
    return dg.MaterializeResult(
        metadata={
            "champion_version": registry.alias_version(client, registry.CHAMPION),
            "challenger_version": report.version,
            "promoted": decision.promote,
            "outcome": decision.outcome,
            "reason": decision.reason,
            "challenger_test_macro_f1": round(decision.challenger_score, 4),
            "previous_champion_test_macro_f1": None
            if decision.champion_score is None
            else round(decision.champion_score, 4),
            # The paired bootstrap of (challenger - champion) test macro-F1 over accidents.
            "gain_ci_low": None if decision.gain_interval is None else round(decision.gain_interval[0], 4),
            "gain_ci_high": None if decision.gain_interval is None else round(decision.gain_interval[1], 4),
            "gain_beyond_noise": decision.beyond_noise,
        }
    )
