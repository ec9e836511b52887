"""GET /monitoring/data on the tiny champion: every state the page can meet answers with a
clear message, never a 500 (no monitoring data yet, an unreadable file, an unknown model
version), and the champion's history comes from the registry."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from api.main import create_app


def test_no_monitoring_data_yet_is_a_note_not_an_error(settings, champion, tmp_path):
    app = create_app(replace(settings, monitoring_dir=tmp_path / "no-such-folder"))
    with TestClient(app) as client:
        response = client.get("/monitoring/data")
    assert response.status_code == 200
    body = response.json()
    assert body["drift_by_day"] == [] and body["prediction_mix"] == [] and body["newest_year_drift"] == []
    assert body["alert_threshold"] is None
    assert body["notes"] == [
        f"No monitoring data yet in {tmp_path / 'no-such-folder'}: the drift models have not been built "
        "(make run, or the monitoring job in the Dagster UI)."
    ]
    assert body["champion_version"] == champion.version
    (entry,) = body["champion_history"]
    assert entry["version"] == champion.version and entry["aliases"] == ["challenger", "champion"]


def test_an_unknown_model_version_is_a_404_naming_the_known_ones(settings, champion, tmp_path):
    with TestClient(create_app(replace(settings, monitoring_dir=tmp_path))) as client:
        response = client.get("/monitoring/data", params={"model_version": "99"})
        assert response.status_code == 404
        assert response.json() == {
            "detail": f"No version '99' of road_accident_severity; registered versions: {champion.version}"
        }
        assert client.get("/monitoring/data", params={"model_version": champion.version}).status_code == 200
        assert client.get("/monitoring/data", params={"model_version": "x" * 21}).status_code == 422


def test_an_unreadable_monitoring_file_is_a_503_naming_it(settings, tmp_path):
    (tmp_path / "drift_requests_by_day.parquet").write_bytes(b"not parquet")
    with TestClient(create_app(replace(settings, monitoring_dir=tmp_path))) as client:
        response = client.get("/monitoring/data")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith(
        f"Monitoring data unreadable: {tmp_path / 'drift_requests_by_day.parquet'} could not"
    )


def test_the_page_is_served_without_any_outside_script(client):
    page = client.get("/monitoring")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script src" not in page.text and "http" not in page.text.replace("http-equiv", "")


def test_the_errors_of_monitoring_data_are_documented(client):
    responses = client.get("/openapi.json").json()["paths"]["/monitoring/data"]["get"]["responses"]
    models = {
        s: r["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1] for s, r in responses.items()
    }
    assert models.items() >= {"200": "Monitoring", "404": "ErrorMessage", "503": "ErrorMessage"}.items()
