"""One MLflow run per training: what was trained, on what, and how it did on the test split.

The Dagster assets call these two functions; the fast API tests call the first to register
a tiny real model exactly as the pipeline does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.types import ColSpec, DataType, Schema

from ml import plots, registry
from ml.contracts import (
    LEGACY_BASELINE,
    MAJORITY_BASELINE,
    MODEL,
    PREVIOUS_FEATURE_SET,
    EvaluationReport,
    TrainingRecord,
)
from ml.crossval import CrossValidation
from ml.data import ML_FEATURES, baseline_columns, data_summary, split_frame
from ml.evaluation import Evaluation
from ml.explain import reference_road_user
from ml.features import FeatureSpec
from ml.metrics import HEADLINE_METRICS
from ml.scoring import model_input
from ml.training import TrainedModels, typical_road_user


class FloatFrameDataset(PandasDataset):
    """``mlflow.data.from_pandas`` of a frame of float64 columns, its schema found column by
    column: MLflow infers a frame's schema by looking at every value in Python, 35 of the 62 s
    that logging a national training run took. The same schema (``tests/test_mlflow_dataset.py``);
    a column of another type is refused (MLflow would log the data set without a schema)."""

    @cached_property
    def schema(self) -> Schema:
        if not all(dtype == "float64" for dtype in self.df.dtypes):
            raise TypeError("FloatFrameDataset holds float64 columns only")
        has_nan = self.df.isna().any()
        return Schema([ColSpec(DataType.double, name, required=not has_nan[name]) for name in has_nan.index])


#: Run artifacts of the global importance from the explanations' own method (``ml.explain``).
EXPLANATION_IMPORTANCE_TABLE = "evaluation/explanation_importance.csv"
EXPLANATION_IMPORTANCE_FIGURE = "evaluation/explanation_importance.png"

#: The ml package, whose code a model is a function of (it travels with the model too).
ML_CODE = Path(__file__).parent


def training_signature(fingerprint: str, spec: FeatureSpec, config: dict) -> str:
    """What a trained model is a function of: the training data (its fingerprint), the
    feature specification, the code of the ml package and the configuration. Two trainings
    with the same signature give the same model, so the second is not needed."""
    digest = hashlib.sha256()
    digest.update(fingerprint.encode())
    digest.update(json.dumps([asdict(f) for f in spec.features], sort_keys=True, default=str).encode())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for path in sorted(ML_CODE.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def reuse_champion(client: MlflowClient, signature: str) -> TrainingRecord | None:
    """The champion's record when it was trained with this very signature, else None."""
    champion = registry.get_version_by_alias(client, registry.CHAMPION)
    if champion is None or champion.tags.get("training_signature") != signature:
        return None
    tags = client.get_run(champion.run_id).data.tags
    names = (MODEL, PREVIOUS_FEATURE_SET, LEGACY_BASELINE, MAJORITY_BASELINE)
    uris = {name: tags[f"model_uri.{name}"] for name in names if f"model_uri.{name}" in tags}
    return TrainingRecord(
        run_id=champion.run_id,
        version=str(champion.version),
        model_uris=uris,
        trained_at=champion.tags.get("trained_at", ""),
        data={
            "years": [int(y) for y in tags.get("data.years", "").split(",") if y],
            "rows_per_split": {
                k.removeprefix("data.rows."): int(v) for k, v in tags.items() if k.startswith("data.rows.")
            },
            "fingerprint": tags.get("data.fingerprint"),
        },
        signature=signature,
        reused=True,
    )


def log_training_run(
    client: MlflowClient,
    trained: TrainedModels,
    features: pd.DataFrame,
    baseline: pd.DataFrame,
    spec: FeatureSpec,
    config: dict,
    signature: str = "",
) -> TrainingRecord:
    """Log the run (params, selection, data lineage, the three models), then, once all of it
    is stored, register the severity model as a new version of ``registry.REGISTERED_MODEL``
    with its tags and point the ``challenger`` alias at it: a crash while logging leaves a
    failed run, never a half-described version. ``config`` is the training configuration."""
    summary = data_summary(features)
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    years = summary["years"]
    span = str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"
    with mlflow.start_run(run_name=f"train {span} rows={summary['rows']}", tags=source_tags()) as run:
        mlflow.set_tag(
            "mlflow.note.content",
            f"Gradient boosting on `marts.ml_features` ({summary['rows']:,} road users of {span}), with "
            "the same gradient boosting without the newest feature set, the replaced project's random "
            "forest and the majority class fitted on the same rows.",
        )
        mlflow.log_input(
            FloatFrameDataset(
                # Floats, as the model reads them (a missing code is NaN).
                model_input(features, spec).assign(**{spec.target: features[spec.target].astype("float64")}),
                source=CodeDatasetSource({"relation": ML_FEATURES, "produced_by": "dbt model ml_features"}),
                name="ml_features",
                targets=spec.target,
                digest=summary["fingerprint"][:36],
            ),
            context="training",
        )
        mlflow.log_params(
            {
                **config,
                "selected_max_leaf_nodes": trained.params.max_leaf_nodes,
                "best_iteration": trained.best_iteration,
                "fit_train_rows": trained.fit_rows,
                "calibration_method": trained.calibration.get("method", "none"),
            }
        )
        # What decided the calibration: each candidate on cross-fitted validation halves.
        for candidate, figures in trained.calibration.get("cross_fitted_validation", {}).items():
            mlflow.log_metrics(
                {f"validation_crossfit_{name}__calibration_{candidate}": v for name, v in figures.items()}
            )
        mlflow.log_metrics(
            {f"validation_macro_f1_max_leaf_nodes_{k}": v for k, v in trained.selection.items()}
        )
        mlflow.log_metrics({f"validation_macro_f1__{k}": v for k, v in trained.validation_macro_f1.items()})
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
        registry.log_json({"features": [asdict(f) for f in spec.features]}, "data/feature_spec.json")
        registry.log_json(typical_road_user(features, spec), registry.TYPICAL_ROAD_USER_ARTIFACT)
        # With the model: the API explains a prediction against its own champion's reference.
        registry.log_json(reference_road_user(features, spec), registry.REFERENCE_ROAD_USER_ARTIFACT)
        example = model_input(split_frame(features, "train").head(5), spec)
        baseline_example = split_frame(baseline, "train")[baseline_columns(baseline)].head(5)
        uris = {MODEL: registry.log_sklearn_model(trained.model, MODEL, example).model_uri}
        # Beside it, compiled: what the API serves (ml.compiled_model).
        registry.log_compiled_model(trained.model, spec.names, uris[MODEL])
        previous = spec.previous_feature_set()
        if trained.previous_feature_set_model is not None and previous is not None:
            uris[PREVIOUS_FEATURE_SET] = registry.log_sklearn_model(
                trained.previous_feature_set_model, PREVIOUS_FEATURE_SET, example[previous.names]
            ).model_uri
        uris |= {
            LEGACY_BASELINE: registry.log_sklearn_model(
                trained.legacy_baseline, LEGACY_BASELINE, baseline_example
            ).model_uri,
            MAJORITY_BASELINE: registry.log_sklearn_model(
                trained.majority_baseline, MAJORITY_BASELINE, baseline_example
            ).model_uri,
        }
        mlflow.set_tags({f"model_uri.{name}": uri for name, uri in uris.items()})
    version = registry.register_version(
        client,
        uris[MODEL],
        run.info.run_id,
        {
            "run_id": run.info.run_id,
            "trained_at": trained_at,
            "data_years": ",".join(map(str, summary["years"])),
            "data_fingerprint": summary["fingerprint"],
            "training_signature": signature,
        },
        description=(
            f"Trained {trained_at} on {summary['rows']:,} road users of {span} "
            f"({', '.join(f'{n:,} {s}' for s, n in summary['rows_per_split'].items())}), "
            f"max_leaf_nodes {trained.params.max_leaf_nodes}, {trained.best_iteration} iterations."
        ),
    )
    client.update_run(run.info.run_id, name=f"train {span} rows={summary['rows']} v{version}")
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHALLENGER, version)
    return TrainingRecord(
        run_id=run.info.run_id,
        version=version,
        model_uris=uris,
        trained_at=trained_at,
        data=summary,
        signature=signature,
    )


def log_evaluation(
    record: TrainingRecord,
    result: Evaluation,
    importance: pd.DataFrame,
    spec: FeatureSpec,
) -> EvaluationReport:
    """Log the test metrics of every model with their bootstrap intervals, per-class scores,
    the confusion matrix, the permutation importance and the calibration to the training run."""
    classes = sorted(spec.classes)
    labels = [spec.classes[c] for c in classes]
    with mlflow.start_run(run_id=record.run_id):
        mlflow.log_metrics({f"test_{k}": v for k, v in result.metrics[MODEL].items()})
        # Named after the model's own (test_macro_f1 sorts before test_macro_f1__majority_class),
        # so that the MLflow UI shows the model's charts first, each baseline beside it.
        for name in (n for n in result.metrics if n != MODEL):
            mlflow.log_metrics({f"test_{k}__{name}": v for k, v in result.metrics[name].items()})
        for name, intervals in result.intervals.items():
            suffix = "" if name == MODEL else f"__{name}"
            for metric, (low, high) in intervals.items():
                mlflow.log_metrics(
                    {f"test_{metric}_ci_low{suffix}": low, f"test_{metric}_ci_high{suffix}": high}
                )
        if result.intervals:
            mlflow.log_text(
                interval_table(result).to_csv(index=False), "evaluation/test_metric_intervals.csv"
            )
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
                result.y_test,
                result.test_proba,
                classes,
                labels,
                "Calibration on the test split\n(expected calibration error: "
                f"top label {result.metrics[MODEL]['top_label_ece']:.3f}, "
                f"severe {result.metrics[MODEL]['severe_ece']:.3f})",
            ),
            "evaluation/calibration.png",
        )
    model = result.metrics[MODEL]
    registry.describe_version(
        MlflowClient(),
        record.version,
        "Test split: " + ", ".join(f"{name} {model[name]:.4f}" for name in HEADLINE_METRICS) + ".",
    )
    return EvaluationReport(
        version=record.version,
        run_id=record.run_id,
        metrics=result.metrics,
        beats_majority=result.beats_majority,
        intervals=result.intervals,
    )


def interval_table(result: Evaluation) -> pd.DataFrame:
    """One row per model and test metric: the value and its 95% bootstrap interval."""
    return pd.DataFrame(
        [
            {
                "model": name,
                "metric": metric,
                "value": result.metrics[name][metric],
                "ci_low": low,
                "ci_high": high,
            }
            for name, intervals in result.intervals.items()
            for metric, (low, high) in intervals.items()
        ]
    )


def log_explanation_importance(record: TrainingRecord, importance: pd.DataFrame) -> None:
    """Log the global importance of ``ml.explain`` (mean |contribution| to P(severe) over
    validation rows) to the training run: a CSV table and a bar chart."""
    with mlflow.start_run(run_id=record.run_id):
        mlflow.log_text(importance.to_csv(), EXPLANATION_IMPORTANCE_TABLE)
        registry.log_figure(
            plots.contribution_importance_figure(
                importance, "Mean |contribution| to P(severe), validation (ml.explain)"
            ),
            EXPLANATION_IMPORTANCE_FIGURE,
        )


def log_feature_set_gain(record: TrainingRecord, gains: dict) -> None:
    """Log the kept model's gain over the same model on the previous feature set, per test
    metric, with its paired bootstrap interval (``ml.evaluation.PairedGain``)."""
    with mlflow.start_run(run_id=record.run_id):
        mlflow.log_metrics(
            {
                f"test_{metric}_gain_over_previous_feature_set{end}": value
                for metric, gain in gains.items()
                for end, value in (("", gain.gain), ("_ci_low", gain.low), ("_ci_high", gain.high))
            }
        )


def log_cross_validation(record: TrainingRecord, cross_validation: CrossValidation) -> None:
    """Log the grouped cross-validation's mean and std per metric, and its folds, to the run."""
    with mlflow.start_run(run_id=record.run_id):
        mlflow.log_metrics(cross_validation.summary())
        mlflow.log_text(cross_validation.table().to_csv(index=False), "evaluation/cross_validation.csv")


def source_tags() -> dict[str, str]:
    """Where a run comes from, whichever entry point started it (make run, the Dagster UI,
    a test): the project's git commit when there is one, and a readable source name."""
    tags = {"mlflow.source.name": "severity_model (Dagster asset, orchestration/assets/ml.py)"}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ML_CODE, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        tags["mlflow.source.git.commit"] = commit
    except (OSError, subprocess.SubprocessError):
        pass
    return tags
