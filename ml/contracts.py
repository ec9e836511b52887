"""What the ML layer is configured by and hands on, as plain types: the models' names, the
hyper-parameters and training plan, the records training and evaluation pass to the next
step, and the evaluation's default sizes.

Nothing here imports scikit-learn, MLflow or matplotlib (an import-linter contract in
pyproject.toml), so the Dagster code location (its Launchpad config, its asset types) loads
without the ML stack: every Dagster process (the UI's code server, the daemon's, a run of
the raw or dbt assets) starts seconds sooner, and only a run that trains pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The marts the models read (dbt's ml_features and ml_baseline_features).
ML_FEATURES = "marts.ml_features"
BASELINE_FEATURES = "marts.ml_baseline_features"

MODEL = "severity_model"
#: The same gradient boosting without the newest feature set (``FeatureSpec.previous_feature_set``):
#: what the new features add, measured on the same rows.
PREVIOUS_FEATURE_SET = "previous_feature_set"
LEGACY_BASELINE = "legacy_random_forest"
MAJORITY_BASELINE = "majority_class"
#: The models that read ml_features (the baselines read ml_baseline_features).
FEATURE_MODELS = (MODEL, PREVIOUS_FEATURE_SET)

#: Bootstrap resamples of the test accidents behind each metric's 95% interval (ml.bootstrap).
BOOTSTRAP_RESAMPLES = 1_000
#: Validation rows the explanations' global importance averages over (ml.explain; each costs
#: up to features + 1 scorings).
GLOBAL_IMPORTANCE_ROWS = 2_000


@dataclass(frozen=True)
class SeverityModelParams:
    """The hyper-parameters of the gradient boosting, defined here only: the Dagster config
    (Launchpad) and the MLflow params are derived from these fields."""

    learning_rate: float = 0.1
    max_iter: int = 500
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    n_iter_no_change: int = 20
    class_weight: str | None = "balanced"
    random_state: int = 42


@dataclass(frozen=True)
class TrainingPlan:
    """How much work training does, beyond the model's hyper-parameters."""

    #: max_leaf_nodes values tried; the best by validation macro-F1 is kept.
    max_leaf_nodes_candidates: tuple[int, ...] = (15, 31, 63)
    #: Candidates are compared on at most this many train rows (and as many validation
    #: rows), stratified by severity. The choice among three tree sizes does not need every
    #: row, and each candidate costs rows x iterations. Smaller data is used whole.
    selection_rows: int = 30_000
    #: The chosen candidate is refit on at most this many train rows (stratified), its early
    #: stopping watching at most as many validation rows. On the national-size data set a
    #: fit on 200,000 rows had the same test macro-F1 as one on 50,000 (0.4279) and a severe
    #: ROC-AUC 0.009 higher, at four times the cost (92 s); the whole of train (1.1 M rows)
    #: would take about 8 minutes on 2 cores. Smaller data is used whole.
    final_fit_rows: int = 150_000
    #: Each tree of the replaced project's random forest sees at most this many rows
    #: (bootstrap), so the baseline stays fair but bounded in time and size.
    legacy_max_samples: int = 50_000
    #: Calibration of the kept model's probabilities on validation (``ml.calibration``):
    #: "auto" (only when it helps, measured by cross-fitting on validation), "none",
    #: "sigmoid" or "isotonic".
    calibration: str = "auto"


@dataclass(frozen=True)
class TrainingRecord:
    """What training hands to the evaluation: the run, the registered version, the models."""

    run_id: str
    version: str  # of the registered severity model
    model_uris: dict[str, str]  # model name -> MLflow model URI (the baselines included)
    trained_at: str
    data: dict  # years, rows, rows per split, accidents, fingerprint of ml_features
    signature: str = ""  # see ml.tracking.training_signature
    #: True when nothing changed since the champion was trained: no new version was made.
    reused: bool = False


@dataclass(frozen=True)
class EvaluationReport:
    """What the evaluation hands to the promotion: the test metrics of every model."""

    version: str
    run_id: str
    metrics: dict[str, dict[str, float]]  # model name -> metric -> value
    beats_majority: bool
    #: model name -> metric -> 95% bootstrap interval over the test accidents.
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    @property
    def model_metrics(self) -> dict[str, float]:
        return self.metrics[MODEL]
