"""GET /metrics: Prometheus counters of requests, predictions, errors and log failures."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.deps import get_champion
from api.main import create_app


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


def test_a_prediction_that_cannot_be_logged_is_not_served(settings, typical, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = create_app(replace(settings, prediction_log_dir=blocker / "predictions"))
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


def test_server_errors_are_counted(settings, typical):
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        broken = replace(client.app.state.store.model, scorer=None)  # scoring will fail
        app.dependency_overrides[get_champion] = lambda: broken
        assert client.post("/predict", json=typical).status_code == 500
        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        errors = {
            (s.labels["path"], s.labels["status"]): s.value
            for s in families["baac_api_errors"].samples
            if s.name.endswith("_total")
        }
        assert errors == {("/predict", "500"): 1.0}
