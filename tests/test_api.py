"""The scoring service, on a real model trained and registered by the pipeline on the sample."""

from __future__ import annotations

import shutil
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from api import model_store
from api.main import create_app
from api.schemas import MAX_BATCH_SIZE, SPEC
from ml.registry import CHAMPION, REGISTERED_MODEL


@pytest.fixture(scope="module")
def tracking_uri(pipeline_run) -> str:
    return f"sqlite:///{pipeline_run.root / 'mlflow.db'}"


@pytest.fixture
def client(tracking_uri, tmp_path):
    with TestClient(
        create_app(tracking_uri, api_key="", refresh_seconds=0, prediction_log_dir=tmp_path)
    ) as client:
        yield client


@pytest.fixture(scope="module")
def typical(tracking_uri) -> dict:
    """A valid road user: the typical one of the training data, as the page starts with."""
    with TestClient(create_app(tracking_uri, api_key="", refresh_seconds=0)) as client:
        return {f["name"]: f["typical"] for f in client.get("/features").json()["features"]}


def test_lifespan_loads_the_champion_once(tracking_uri, typical, tmp_path, monkeypatch):
    loads = []
    original = model_store.ChampionStore._load
    monkeypatch.setattr(
        model_store.ChampionStore, "_load", lambda self, v: loads.append(v) or original(self, v)
    )
    with TestClient(
        create_app(tracking_uri, api_key="", refresh_seconds=0, prediction_log_dir=tmp_path)
    ) as client:
        assert client.get("/health").json() == {"status": "ok", "model_version": "1"}
        for _ in range(3):
            assert client.post("/predict", json=typical).status_code == 200
    assert loads == ["1"]


def test_model_describes_version_data_and_test_metrics(client, tracking_uri):
    info = client.get("/model").json()
    assert (info["name"], info["version"], info["alias"]) == (REGISTERED_MODEL, "1", CHAMPION)
    assert info["data"]["years"] == [2016]
    assert info["data"]["rows_per_split"] == {"train": 3049, "validation": 1017, "test": 932}
    run = MlflowClient(tracking_uri=tracking_uri).get_run(info["run_id"])
    assert info["test_metrics"]["macro_f1"] == run.data.metrics["test_macro_f1"]
    assert info["trained_at"]


def test_single_prediction(client, typical):
    answer = client.post("/predict", json=typical).json()
    assert answer["model"] == {"name": REGISTERED_MODEL, "version": "1"}
    assert set(answer["probabilities"]) == {"unhurt", "light injury", "hospitalised", "killed"}
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    assert answer["severe_probability"] == pytest.approx(
        answer["probabilities"]["hospitalised"] + answer["probabilities"]["killed"]
    )


def test_batch_prediction_and_not_recorded_values(client, typical):
    pedestrian = {**typical, "user_category_code": 3, "seat_position_code": None, "age": 85}
    unknown = {name: None for name in typical}
    answer = client.post("/predict", json=[typical, pedestrian, unknown]).json()
    assert len(answer["predictions"]) == 3
    for prediction in answer["predictions"]:
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
        assert prediction["severity"] in (1, 2, 3, 4)
    assert answer["predictions"][0] == {
        k: v for k, v in client.post("/predict", json=typical).json().items() if k != "model"
    }


def test_bad_code_names_the_field_and_the_allowed_codes(client, typical):
    response = client.post("/predict", json={**typical, "lighting_code": 9})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "lighting_code"]
    assert error["input"] == 9
    assert error["allowed"] == {
        "1": "full daylight",
        "2": "dusk or dawn",
        "3": "night, no street lighting",
        "4": "night, street lighting present but off",
        "5": "night, street lighting on",
    }
    assert "lighting_code" in error["msg"] and "1 = full daylight" in error["msg"]


def test_missing_field_out_of_range_and_unknown_field(client, typical):
    missing = {k: v for k, v in typical.items() if k != "age"}
    assert client.post("/predict", json=missing).json()["detail"] == [
        {"loc": ["body", "age"], "type": "missing", "msg": "age: Field required"}
    ]
    (error,) = client.post("/predict", json=[typical, {**typical, "hour": 24}]).json()["detail"]
    assert error["loc"] == ["body", 1, "hour"] and error["type"] == "less_than_equal"
    (error,) = client.post("/predict", json={**typical, "grav": 2}).json()["detail"]
    assert error["loc"] == ["body", "grav"] and error["type"] == "extra_forbidden"


def test_oversized_batch_is_refused(client, typical):
    response = client.post("/predict", json=[typical] * (MAX_BATCH_SIZE + 1))
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"
    assert client.post("/predict", json=[]).status_code == 422


def test_without_a_champion_the_service_says_503(tmp_path, typical):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(empty, api_key="", refresh_seconds=0, prediction_log_dir=tmp_path)) as client:
        assert client.get("/health").status_code == 503
        assert client.get("/model").status_code == 503
        response = client.post("/predict", json=typical)
        assert response.status_code == 503
        assert "No champion model" in response.json()["detail"]


def register_new_champion(uri: str, artifact_root) -> str:
    """A genuinely different model: class priors of the training data, whatever the inputs."""
    import mlflow
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from ml import registry
    from ml.models import CodebookTyper

    client = registry.configure_tracking(uri, artifact_root)
    example = pd.DataFrame([{name: 1.0 for name in SPEC.names}] * 4)
    priors = Pipeline(
        [
            ("types", CodebookTyper(columns=SPEC.names, categories={})),
            ("model", DummyClassifier(strategy="prior")),
        ]
    ).fit(example, [1, 2, 3, 3])
    with mlflow.start_run():
        info = registry.log_sklearn_model(priors, "model", example, REGISTERED_MODEL)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, str(info.registered_model_version))
    return str(info.registered_model_version)


def test_a_new_champion_is_picked_up_without_restart(pipeline_run, tmp_path, typical):
    store = tmp_path / "mlflow.db"
    shutil.copy(pipeline_run.root / "mlflow.db", store)
    uri = f"sqlite:///{store}"
    with TestClient(create_app(uri, api_key="", refresh_seconds=0, prediction_log_dir=tmp_path)) as client:
        assert client.get("/health").json()["model_version"] == "1"
        before = client.post("/predict", json=typical).json()
        version = register_new_champion(uri, tmp_path / "artifacts")
        assert client.get("/health").json()["model_version"] == "1"  # nothing reloads per request
        assert client.post("/model/reload").json()["version"] == version
        after = client.post("/predict", json=typical).json()
        assert after["model"]["version"] == version
        assert after["probabilities"] == pytest.approx(
            {"unhurt": 0.25, "light injury": 0.25, "hospitalised": 0.5, "killed": 0.0}
        )
        assert after["probabilities"] != before["probabilities"]
    # ... and on its own, when it looks for a new champion every so often.
    with TestClient(create_app(uri, api_key="", refresh_seconds=0.2, prediction_log_dir=tmp_path)) as client:
        version = register_new_champion(uri, tmp_path / "artifacts")
        deadline = time.monotonic() + 20
        while client.get("/health").json()["model_version"] != version and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/health").json()["model_version"] == version


def test_api_key_guards_predict_and_reload_only(tracking_uri, typical, tmp_path):
    with TestClient(
        create_app(tracking_uri, api_key="s3cret", refresh_seconds=0, prediction_log_dir=tmp_path)
    ) as client:
        assert client.post("/predict", json=typical).status_code == 401
        assert client.post("/predict", json=typical, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/predict", json=typical, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.post("/model/reload").status_code == 401
        assert client.post("/model/reload", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/features").json()["api_key_required"] is True


def test_metrics_are_prometheus_text(client, typical):
    client.post("/predict", json=[typical, typical])
    client.post("/predict", json={**typical, "lighting_code": 9})
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    predictions = sum(s.value for s in families["baac_api_predictions"].samples if s.name.endswith("_total"))
    assert predictions == 2
    requests = {
        (s.labels["path"], s.labels["status"]): s.value
        for s in families["baac_api_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/predict", "200")] == 1 and requests[("/predict", "422")] == 1
    assert any(s.name.endswith("_bucket") for s in families["baac_api_request_latency_seconds"].samples)
    errors = [s for s in families["baac_api_errors"].samples if s.name.endswith("_total")]
    assert [(s.labels["path"], s.labels["status"], s.value) for s in errors] == [("/predict", "422", 1.0)]


def test_every_prediction_is_logged_to_parquet(client, typical, tmp_path):
    answer = client.post("/predict", json=[typical, {**typical, "age": 90}]).json()
    log = pd.read_parquet(next(tmp_path.glob("date=*")))
    assert len(log) == 2
    assert list(log["model_version"]) == ["1", "1"]
    assert list(log["predicted_severity"]) == [p["severity"] for p in answer["predictions"]]
    assert list(log["age"]) == [typical["age"], 90.0]
    assert log["p_killed"].tolist() == pytest.approx(
        [p["probabilities"]["killed"] for p in answer["predictions"]]
    )


def test_an_unreachable_registry_keeps_the_model_served(tracking_uri, typical, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with TestClient(
        create_app(tracking_uri, api_key="", refresh_seconds=0, prediction_log_dir=tmp_path)
    ) as client:
        client.app.state.store.client = MlflowClient(
            tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9"
        )
        response = client.post("/model/reload")
        assert response.status_code == 503
        assert response.json()["detail"].startswith("Model registry unreachable")
        assert client.get("/health").json() == {"status": "ok", "model_version": "1"}
        assert client.post("/predict", json=typical).status_code == 200


def test_a_prediction_that_cannot_be_logged_is_not_served(tracking_uri, typical, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = create_app(tracking_uri, api_key="", refresh_seconds=0, prediction_log_dir=blocker / "predictions")
    with TestClient(app) as client:
        response = client.post("/predict", json=typical)
        assert response.status_code == 503
        assert response.json()["detail"].startswith("Prediction log unavailable")
        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert [
            s.value for s in families["baac_api_prediction_log_failures"].samples if s.name.endswith("_total")
        ] == [1.0]
        assert all(
            s.value == 0 for s in families["baac_api_predictions"].samples if s.name.endswith("_total")
        )


def test_types_are_strict_and_odd_json_gets_a_422(client, typical):
    for field, value in [
        ("lighting_code", True),
        ("lighting_code", "1"),
        ("lighting_code", 1.0),
        ("age", "36"),
    ]:
        response = client.post("/predict", json={**typical, field: value})
        assert response.status_code == 422, (field, value)
        assert response.json()["detail"][0]["loc"] == ["body", field]
    body = '{"age": NaN, ' + ", ".join(f'"{k}": null' for k in typical if k != "age") + "}"
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "age"]
    (error,) = client.post("/predict", json=[1]).json()["detail"]
    assert error["loc"] == ["body", 0] and error["type"] == "model_attributes_type"


def test_a_missing_code_field_lists_its_allowed_codes(client, typical):
    (error,) = client.post("/predict", json={k: v for k, v in typical.items() if k != "sex_code"}).json()[
        "detail"
    ]
    assert error["loc"] == ["body", "sex_code"] and error["type"] == "missing"
    assert error["allowed"] == {"1": "male", "2": "female"}


def test_non_ascii_api_key_is_refused_not_a_crash(tracking_uri, typical, tmp_path):
    with TestClient(
        create_app(tracking_uri, api_key="s3cret", refresh_seconds=0, prediction_log_dir=tmp_path)
    ) as client:
        response = client.post("/predict", json=typical, headers={"X-API-Key": "clé".encode("latin-1")})
        assert response.status_code == 401


def test_server_errors_are_counted(tracking_uri, typical, tmp_path):
    app = create_app(tracking_uri, api_key="", refresh_seconds=0, prediction_log_dir=tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        object.__setattr__(client.app.state.store.model, "estimator", None)  # scoring will fail
        assert client.post("/predict", json=typical).status_code == 500
        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        errors = {
            (s.labels["path"], s.labels["status"]): s.value
            for s in families["baac_api_errors"].samples
            if s.name.endswith("_total")
        }
        assert errors == {("/predict", "500"): 1.0}
