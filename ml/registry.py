"""MLflow: the tracking store, one run per training, the registered model and its aliases.

Aliases only (``challenger``, ``champion``); MLflow's stages are deprecated.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.store.artifact.utils.models import _parse_model_id_if_present

from ml.promotion import PROMOTION_METRIC, PromotionDecision

REGISTERED_MODEL = "road_accident_severity"
EXPERIMENT = "road_accident_severity"
CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_DESCRIPTION = (
    "Predicts how badly a road user involved in an injury accident in France is hurt (unhurt, "
    "light injury, hospitalised, killed) from the accident's conditions, the road, the vehicle "
    "and the road user, as the BAAC files (ONISR) record them. Trained by the Dagster asset "
    "`severity_model` on the dbt mart `marts.ml_features` (train split; validation for early "
    "stopping and selection); evaluated on the accident-grouped test split. Promotion: the "
    "`champion` alias moves to a challenger that beats the majority-class baseline and the "
    "current champion on test macro-F1 (ml/promotion.py)."
)
EXPERIMENT_DESCRIPTION = "Training runs of road_accident_severity: " + MODEL_DESCRIPTION
#: Run artifact: the typical road user of the training data (the scoring page's defaults).
TYPICAL_ROAD_USER_ARTIFACT = "data/typical_road_user.json"
#: Run artifact: the reference road user explanations replace each feature with
#: (``ml.explain.reference_road_user``), stored with the model so the API explains with it.
REFERENCE_ROAD_USER_ARTIFACT = "data/reference_road_user.json"
#: Run artifact: the registered model compiled for arrays (``ml.compiled_model``), marked
#: with the URI of the logged model it comes from; the API serves it without scikit-learn.
COMPILED_MODEL_ARTIFACT = "serving/compiled_model.npz"
#: Models are stored with skops, which loads only the types it is told to trust: ours, and
#: the scikit-learn internals of the gradient boosting (reviewed: we write these files).
SKOPS_TRUSTED_TYPES = [
    "ml.models.CodebookTyper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.tree._tree.Tree",  # the legacy random forest
    "ml.calibration.CalibratedSeverityModel",  # a calibrated model: the pipeline and its map
    "ml.calibration.ProbabilityCalibration",
]


def configure_tracking(tracking_uri: str, artifact_root: Path | None = None) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (never the working directory) and make sure the
    experiment exists; with a local store, its artifacts go under ``artifact_root``."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        is_local = tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri
        location = artifact_root.resolve().as_uri() if is_local and artifact_root else None
        if location:
            artifact_root.mkdir(parents=True, exist_ok=True)
        # The experiment opens in MLflow's model-training view, not its GenAI one.
        client.create_experiment(
            EXPERIMENT,
            artifact_location=location,
            tags={
                "mlflow.experimentKind": "custom_model_development",
                "mlflow.note.content": EXPERIMENT_DESCRIPTION,
            },
        )
    mlflow.set_experiment(EXPERIMENT)
    return client


#: What loading a model needs, pinned to this environment (inferring it costs a subprocess).
MODEL_REQUIREMENTS = [f"{p}=={version(p)}" for p in ("scikit-learn", "pandas", "numpy", "skops")]
#: The ml package (CodebookTyper) travels with the model, so any MLflow client can load it;
#: ml.models imports nothing else of the project at run time.
MODEL_CODE = str(Path(__file__).parent)


def log_sklearn_model(estimator, name: str, input_example: pd.DataFrame):
    """Log an estimator with its signature (inputs -> class probabilities) and an input example."""
    signature = infer_signature(input_example, estimator.predict_proba(input_example))
    return mlflow.sklearn.log_model(
        estimator,
        name=name,
        signature=signature,
        input_example=input_example,
        serialization_format="skops",
        pip_requirements=MODEL_REQUIREMENTS,
        code_paths=[MODEL_CODE],
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )


def register_version(
    client: MlflowClient, model_uri: str, run_id: str, tags: dict[str, str], description: str = ""
) -> str:
    """A new version of the registered model, created with all its tags at once."""
    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        client.create_registered_model(REGISTERED_MODEL, description=MODEL_DESCRIPTION)
    # A tracking server accepts a logged model's ``models:/<model_id>`` source only with its
    # model_id (a local store infers it), as mlflow.register_model passes it.
    version = client.create_model_version(
        REGISTERED_MODEL,
        model_uri,
        run_id=run_id,
        tags=tags,
        description=description,
        model_id=_parse_model_id_if_present(model_uri),
    )
    return str(version.version)


def clean_debris(client: MlflowClient) -> list[str]:
    """What a crash left behind, cleaned and described: runs still RUNNING (training runs one
    at a time, so none can be alive when a new one starts) end as FAILED; versions without
    the tags every complete version has are deleted unless an alias points at them."""
    notes = []
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
            client.set_terminated(run.info.run_id, status="FAILED")
            notes.append(f"run {run.info.run_id} was left RUNNING by a crash: marked FAILED")
    try:
        versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except MlflowException:
        versions = []
    for model_version in versions:
        if "trained_at" not in model_version.tags and not model_version.aliases:
            client.delete_model_version(REGISTERED_MODEL, model_version.version)
            notes.append(
                f"version {model_version.version} was registered without its tags by a crash: deleted"
            )
    return notes


def log_compiled_model(estimator, columns: list[str], model_uri: str) -> bool:
    """Log ``estimator`` (logged at ``model_uri``) compiled for rows of ``columns`` as the
    active run's ``COMPILED_MODEL_ARTIFACT``; False, nothing logged, for a model that does not
    compile (``ml.array_model.compile_model`` scores it through a DataFrame)."""
    from ml.array_model import compile_model
    from ml.compiled_model import CompiledTrees

    compiled = compile_model(estimator, columns)
    if not isinstance(compiled, CompiledTrees):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(COMPILED_MODEL_ARTIFACT).name
        compiled.write(path, model_uri)
        mlflow.log_artifact(str(path), str(Path(COMPILED_MODEL_ARTIFACT).parent))
    return True


def read_compiled_model(client: MlflowClient, run_id: str, model_uri: str, columns: list[str]):
    """The run's compiled model (``ml.compiled_model.CompiledTrees``) for rows of ``columns``
    when it was compiled from ``model_uri``; None when the run has none (logged before it
    existed, or a model that does not compile), one of another model, or one in a file
    layout this code does not read: the caller then compiles the model itself."""
    from ml.compiled_model import CompiledTrees, UnknownFileFormat

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, COMPILED_MODEL_ARTIFACT, tmp)
            compiled, compiled_from = CompiledTrees.read(Path(path), columns)
        except (MlflowException, OSError, UnknownFileFormat):
            return None
    return compiled if compiled_from == model_uri else None


def log_json(data: dict, artifact_file: str) -> None:
    mlflow.log_text(json.dumps(data, indent=2, default=str), artifact_file)


def read_json_artifact(client: MlflowClient, run_id: str, artifact_file: str) -> dict | None:
    """A JSON artifact of a run, or None when the run has none (a run logged before it existed)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, artifact_file, tmp)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(path).read_text(encoding="utf-8"))


def log_figure(figure, artifact_file: str) -> None:
    """Log a matplotlib figure as a PNG, then close it (pyplot keeps every open figure)."""
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        figure.savefig(path, dpi=120)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent))
    plt.close(figure)


def get_version_by_alias(client: MlflowClient, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException:
        return None


@dataclass(frozen=True)
class VersionRecord:
    """One registered version as the monitoring page shows it: aliases and the decision."""

    version: str
    aliases: tuple[str, ...]
    registered_at: str
    trained_at: str | None = None
    promotion_decision: str | None = None
    promotion_reason: str | None = None
    decided_at: str | None = None


def version_history(client: MlflowClient) -> list[VersionRecord]:
    """Every version of the registered model, newest first (none when it is not registered)."""
    try:
        registered = client.get_registered_model(REGISTERED_MODEL)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    # The registered model holds the aliases: searched versions come without them.
    aliases: dict[str, list[str]] = {}
    for alias, number in (registered.aliases or {}).items():
        aliases.setdefault(str(number), []).append(alias)
    records = [
        VersionRecord(
            version=str(v.version),
            aliases=tuple(sorted(aliases.get(str(v.version), ()))),
            registered_at=datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(
                timespec="seconds"
            ),
            trained_at=v.tags.get("trained_at"),
            promotion_decision=v.tags.get("promotion_decision"),
            promotion_reason=v.tags.get("promotion_reason"),
            decided_at=v.tags.get("decided_at"),
        )
        for v in client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    ]
    return sorted(records, key=lambda r: int(r.version), reverse=True)


def alias_version(client: MlflowClient, alias: str) -> str | None:
    """The version an alias points at, or None."""
    version = get_version_by_alias(client, alias)
    return None if version is None else str(version.version)


def load_version(version: str | int):
    """The scikit-learn model of a registered version (``predict_proba`` included)."""
    return mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL}/{version}")


def record_promotion(client: MlflowClient, version: str, decision: PromotionDecision) -> None:
    """Write the decision and both scores on the challenger's version; move the champion
    alias if it was promoted."""
    tags = {
        "promotion_decision": "promoted" if decision.promote else "kept_champion",
        "promotion_outcome": decision.outcome,
        "promotion_reason": decision.reason,
        "promotion_metric": f"test_{PROMOTION_METRIC}",
        "challenger_score": f"{decision.challenger_score:.6f}",
        "champion_score": "" if decision.champion_score is None else f"{decision.champion_score:.6f}",
        "gain_ci_low": "" if decision.gain_interval is None else f"{decision.gain_interval[0]:.6f}",
        "gain_ci_high": "" if decision.gain_interval is None else f"{decision.gain_interval[1]:.6f}",
        "gain_beyond_noise": "" if decision.beyond_noise is None else str(decision.beyond_noise).lower(),
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, key, value)
    describe_version(
        client, version, f"Promotion: {tags['promotion_decision'].replace('_', ' ')} ({decision.reason})."
    )
    if decision.promote:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)


def describe_version(client: MlflowClient, version: str, paragraph: str) -> None:
    """Add a paragraph to a version's description (data, then test metrics, then decision)."""
    current = client.get_model_version(REGISTERED_MODEL, version).description or ""
    client.update_model_version(REGISTERED_MODEL, version, description=f"{current}\n\n{paragraph}".strip())
