"""The champion model, loaded from the MLflow registry once and swapped when it changes.

Registry calls never run on a request's path: a refresh runs in a thread of its own, at
most one at a time, started by the watcher or by ``POST /model/reload`` (which answers at
once). A registry that hangs or is down costs that one thread, never a request worker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.compiled_model import ArrayModel
from ml.explain import reference_vector
from ml.metrics import SCALAR_METRICS
from ml.registry import (
    CHAMPION,
    REFERENCE_ROAD_USER_ARTIFACT,
    REGISTERED_MODEL,
    TYPICAL_ROAD_USER_ARTIFACT,
    VersionRecord,
    read_compiled_model,
    read_json_artifact,
    version_history,
)

log = logging.getLogger("baac.api")


@dataclass(frozen=True)
class LoadedModel:
    #: The scikit-learn object, for a version stored without its compiled trees (logged
    #: before they were, or a model that does not compile); None when served from them.
    estimator: Any
    version: str
    run_id: str
    trained_at: str | None
    data: dict[str, Any]
    test_metrics: dict[str, float]
    classes: list[int] = field(default_factory=list)
    #: Typical value of each feature in its training data (the page's defaults).
    typical_road_user: dict[str, Any] = field(default_factory=dict)
    #: The model compiled for float arrays of the features in specification order
    #: (``ml.compiled_model``): what /predict scores with.
    scorer: ArrayModel | None = None
    #: The reference road user explanations replace each feature with (``ml.explain``), as a
    #: row in the order of ``scorer``'s columns; None for a version trained before it was stored.
    reference: np.ndarray | None = None


@dataclass(frozen=True)
class RefreshStatus:
    """The refresh running, or the last one."""

    started_at: str
    finished_at: str | None = None
    #: What the refresh found: "loaded version N", "unchanged", "no champion", or the error.
    outcome: str | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ChampionStore:
    """Holds the current champion; ``refresh`` reloads only when the alias moved."""

    def __init__(self, tracking_uri: str, columns: list[str]):
        self.tracking_uri = tracking_uri
        #: The features of a row /predict scores, in order (the specification's).
        self.columns = list(columns)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._model: LoadedModel | None = None
        self._lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._running: RefreshStatus | None = None
        self._running_since = 0.0
        self.last_refresh: RefreshStatus | None = None
        #: Every registered version with its aliases, as of the last refresh (/monitoring).
        self.history: list[VersionRecord] = []

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    def champion_version(self) -> str | None:
        """The champion's version; None only when there is none. A registry that cannot be
        reached raises: the caller keeps the model it holds."""
        try:
            return str(self.client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def refresh(self) -> bool:
        """Load the champion if it is not the one held. True when the model changed.

        One refresh at a time (the watcher and /model/reload may meet), so an older version
        can never replace a newer one."""
        with self._lock:
            version = self.champion_version()
            self.history = version_history(self.client)
            current = self._model.version if self._model else None
            if version == current:
                return False
            self._model = self._load(version) if version else None
            return True

    @property
    def refresh_running(self) -> RefreshStatus | None:
        return self._running

    def start_refresh(self) -> bool:
        """Start a refresh in a background thread and return at once: True when one started,
        False when one is already running (at most one at a time)."""
        with self._status_lock:
            if self._running is not None:
                return False
            self._running = RefreshStatus(started_at=_now())
            self._running_since = time.monotonic()
        threading.Thread(target=self._refresh_in_background, name="champion-refresh", daemon=True).start()
        return True

    def running_for(self) -> float:
        """Seconds the running refresh has taken so far (0 when none runs)."""
        return time.monotonic() - self._running_since if self._running else 0.0

    def _refresh_in_background(self) -> None:
        # A daemon thread: a registry that never answers cannot hold the process at exit.
        outcome, error = None, None
        try:
            changed = self.refresh()
            model = self._model
            if model is None:
                outcome = "no champion"
            else:
                outcome = (
                    f"loaded version {model.version}" if changed else f"unchanged (version {model.version})"
                )
            if changed:
                log.info("Champion: %s", outcome)
        except Exception as exc:  # the registry may be unreachable: keep serving the model held
            error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
            log.warning("Looking for a new champion failed: %s", error)
        finally:
            with self._status_lock:
                started = self._running.started_at if self._running else _now()
                self.last_refresh = RefreshStatus(started, _now(), outcome, error)
                self._running = None

    def _load(self, version: str) -> LoadedModel:
        model_version = self.client.get_model_version(REGISTERED_MODEL, version)
        estimator = None
        scorer = read_compiled_model(self.client, model_version.run_id, model_version.source, self.columns)
        if scorer is None:  # no compiled trees stored with this version: compile it here
            estimator, scorer = self._load_estimator(version)
        run = self.client.get_run(model_version.run_id)
        tags = run.data.tags
        return LoadedModel(
            estimator=estimator,
            version=str(version),
            run_id=model_version.run_id,
            trained_at=model_version.tags.get("trained_at"),
            data={
                "years": [int(y) for y in tags.get("data.years", "").split(",") if y],
                "rows_per_split": {
                    k.removeprefix("data.rows."): int(v)
                    for k, v in tags.items()
                    if k.startswith("data.rows.")
                },
                "fingerprint": tags.get("data.fingerprint"),
            },
            test_metrics={
                name: run.data.metrics[f"test_{name}"]
                for name in SCALAR_METRICS
                if f"test_{name}" in run.data.metrics
            },
            classes=[int(c) for c in scorer.classes_],
            typical_road_user=self._typical_road_user(model_version.run_id),
            scorer=scorer,
            reference=self._reference(model_version.run_id),
        )

    def _load_estimator(self, version: str) -> tuple[Any, ArrayModel]:
        """The version's scikit-learn object, and it compiled for this service's columns:
        scikit-learn and skops are imported here only, for a version without compiled trees."""
        import mlflow.sklearn

        from ml.array_model import compile_model

        # The download URI is a plain artifact location: no global MLflow state involved.
        source = self.client.get_model_version_download_uri(REGISTERED_MODEL, version)
        estimator = mlflow.sklearn.load_model(source)
        return estimator, compile_model(estimator, self.columns)

    def _typical_road_user(self, run_id: str) -> dict[str, Any]:
        typical = read_json_artifact(self.client, run_id, TYPICAL_ROAD_USER_ARTIFACT)
        if typical is None:
            log.warning("Run %s has no %s: the page starts blank", run_id, TYPICAL_ROAD_USER_ARTIFACT)
        return typical or {}

    def _reference(self, run_id: str) -> np.ndarray | None:
        reference = read_json_artifact(self.client, run_id, REFERENCE_ROAD_USER_ARTIFACT)
        if reference is None:
            log.warning(
                "Run %s has no %s: predictions cannot be explained", run_id, REFERENCE_ROAD_USER_ARTIFACT
            )
            return None
        # A feature the reference lacks (added to the specification after this version was
        # trained) is NaN: the version does not read it, so it contributes nothing.
        return reference_vector(reference, self.columns)
