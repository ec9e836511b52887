"""The champion: loaded once, described by GET /model, replaced without a restart, kept when
the registry is unreachable, and a 503 when there is none."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from api import model_store
from api.main import create_app
from ml.metrics import SCALAR_METRICS
from ml.registry import CHAMPION, REGISTERED_MODEL


def test_lifespan_loads_the_champion_once(settings, champion, typical, monkeypatch):
    loads = []
    original = model_store.ChampionStore._load
    monkeypatch.setattr(
        model_store.ChampionStore, "_load", lambda self, v: loads.append(v) or original(self, v)
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json() == {"status": "ok", "model_version": champion.version}
        for _ in range(3):
            assert client.post("/predict", json=typical).status_code == 200
    assert loads == [champion.version]


def test_model_describes_version_data_and_test_metrics(client, champion):
    info = client.get("/model").json()
    assert (info["name"], info["version"], info["alias"]) == (REGISTERED_MODEL, champion.version, CHAMPION)
    assert info["run_id"] == champion.record.run_id
    assert info["data"]["years"] == champion.record.data["years"]
    assert info["data"]["rows_per_split"] == champion.record.data["rows_per_split"]
    assert info["data"]["fingerprint"] == champion.record.data["fingerprint"]
    run = MlflowClient(tracking_uri=champion.tracking_uri).get_run(info["run_id"])
    assert info["test_metrics"]["macro_f1"] == run.data.metrics["test_macro_f1"]
    assert info["test_metrics"] == {name: run.data.metrics[f"test_{name}"] for name in SCALAR_METRICS}
    assert info["trained_at"]


def test_without_a_champion_the_service_says_503(settings, champion, tmp_path, typical):
    shutil.copy(champion.empty_store, tmp_path / "empty.db")
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(replace(settings, tracking_uri=empty))) as client:
        assert client.get("/health").status_code == 503
        assert client.get("/model").status_code == 503
        response = client.post("/predict", json=typical)
        assert response.status_code == 503
        assert "No champion model" in response.json()["detail"]


def register_new_champion(uri: str, artifact_root, spec) -> str:
    """A genuinely different model: class priors of the training data, whatever the inputs."""
    import mlflow
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from ml import registry
    from ml.models import CodebookTyper

    example = pd.DataFrame([{name: 1.0 for name in spec.names}] * 4)
    priors = Pipeline(
        [
            ("types", CodebookTyper(columns=spec.names, categories={})),
            ("model", DummyClassifier(strategy="prior")),
        ]
    ).fit(example, [1, 2, 3, 3])
    client = registry.configure_tracking(uri, artifact_root)  # the test restores MLflow's globals
    with mlflow.start_run() as run:
        info = registry.log_sklearn_model(priors, "model", example)
    version = registry.register_version(client, info.model_uri, run.info.run_id, {"trained_at": "now"})
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    return version


def wait_for_version(client, version: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/health").json()["model_version"] != version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("/health").json()["model_version"] == version


def wait_for_refresh(client, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while (status := client.get("/model/refresh").json())["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not status["running"]
    return status


def test_a_new_champion_is_picked_up_without_restart(
    settings, champion, spec, tmp_path, typical, mlflow_globals
):
    store = tmp_path / "mlflow.db"
    shutil.copy(champion.tracking_uri.removeprefix("sqlite:///"), store)
    uri = f"sqlite:///{store}"
    with TestClient(create_app(replace(settings, tracking_uri=uri))) as client:
        assert client.get("/health").json()["model_version"] == champion.version
        before = client.post("/predict", json=typical).json()
        version = register_new_champion(uri, tmp_path / "artifacts", spec)
        assert (
            client.get("/health").json()["model_version"] == champion.version
        )  # nothing reloads per request
        reload = client.post("/model/reload")  # answered at once, with the model held meanwhile
        assert reload.status_code == 202 and reload.json()["model"]["version"] == champion.version
        wait_for_version(client, version)
        assert client.get("/model/refresh").json()["outcome"] == f"loaded version {version}"
        after = client.post("/predict", json=typical).json()
        assert after["model"]["version"] == version
        assert after["probabilities"] == pytest.approx(
            {"unhurt": 0.25, "light injury": 0.25, "hospitalised": 0.5, "killed": 0.0}
        )
        assert after["probabilities"] != before["probabilities"]
    # ... and on its own, when it looks for a new champion every so often.
    with TestClient(create_app(replace(settings, tracking_uri=uri, refresh_seconds=0.2))) as client:
        version = register_new_champion(uri, tmp_path / "artifacts", spec)
        wait_for_version(client, version)


def test_an_unreachable_registry_keeps_the_model_served(settings, champion, typical, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with TestClient(create_app(settings)) as client:
        client.app.state.store.client = MlflowClient(
            tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9"
        )
        response = client.post("/model/reload")
        assert response.status_code == 202
        assert response.json()["model"]["version"] == champion.version
        status = wait_for_refresh(client)
        assert status["error"].startswith("MlflowException") and status["outcome"] is None
        assert client.get("/health").json() == {"status": "ok", "model_version": champion.version}
        assert client.post("/predict", json=typical).status_code == 200
