"""POST /predict?explain=true on the tiny champion: the reasons, their words and numbers, the
default and chosen top N, the unchanged answer and 422s, and a champion stored without its
reference road user (trained before explanations existed): 409, the prediction still served."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ml.explain import feature_label, value_label


def test_explain_gives_the_top_reasons_in_words(client, typical, spec):
    plain = client.post("/predict", json=typical).json()
    answer = client.post("/predict?explain=true", json=typical).json()
    explanation = answer.pop("explanation")
    assert answer == plain  # the prediction itself is the same
    reasons = explanation["reasons"]
    assert 1 <= len(reasons) <= 5  # BAAC_EXPLAIN_TOP's default
    sizes = [abs(r["contribution"]) for r in reasons]
    assert sizes == sorted(sizes, reverse=True) and all(s > 0 for s in sizes)
    for reason in reasons:
        feature = spec[reason["feature"]]  # a real feature
        assert reason["value"] == typical[feature.name]
        assert reason["label"] == feature_label(feature)
        assert reason["value_label"] == value_label(
            feature, math.nan if reason["value"] is None else float(reason["value"])
        )
        assert reason["text"] == (
            f"{reason['label']}: {reason['value_label']} {reason['contribution']:+.1f} points"
        )
        assert math.isfinite(reason["contribution"])
    assert 0 <= explanation["reference_severe_probability"] <= 1


def test_every_reason_and_the_interactions_add_up_to_the_change_from_the_reference(client, typical, spec):
    pedestrian = {**typical, "user_category_code": 3, "vehicle_category_code": 14, "age": 80}
    top = len(spec.names)
    answer = client.post(f"/predict?explain=true&top={top}", json=[typical, pedestrian]).json()
    for prediction in answer["predictions"]:
        explanation = prediction["explanation"]
        total = sum(r["contribution"] for r in explanation["reasons"]) + explanation["interactions"]
        change = 100 * (prediction["severe_probability"] - explanation["reference_severe_probability"])
        assert total == pytest.approx(change, abs=1e-6)
    moved = {r["feature"] for r in answer["predictions"][1]["explanation"]["reasons"]}
    assert moved <= set(spec.names)
    two = client.post("/predict?explain=true&top=2", json=[pedestrian]).json()["predictions"][0]
    assert two["explanation"]["reasons"] == answer["predictions"][1]["explanation"]["reasons"][:2]


def test_the_default_number_of_reasons_is_a_setting(settings, typical):
    with TestClient(create_app(replace(settings, explain_top=2))) as client:
        pedestrian = {**typical, "user_category_code": 3, "vehicle_category_code": 1, "age": 80}
        assert (
            len(client.post("/predict?explain=true", json=pedestrian).json()["explanation"]["reasons"]) <= 2
        )


def test_without_explain_nothing_changes_and_bad_input_is_the_same_422(client, typical, spec):
    assert "explanation" not in client.post("/predict", json=typical).json()
    assert "explanation" not in client.post("/predict?explain=false", json=typical).json()
    bad = {**typical, "lighting_code": 9}
    assert client.post("/predict?explain=true", json=bad).json() == client.post("/predict", json=bad).json()
    assert client.post("/predict?explain=true", json=bad).status_code == 422
    for top in (0, len(spec.names) + 1):
        response = client.post(f"/predict?explain=true&top={top}", json=typical)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "top"]


def test_openapi_documents_explain_top_and_the_409(client):
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/predict"]["post"]
    assert {p["name"] for p in operation["parameters"]} >= {"explain", "top"}
    assert "reference road user" in operation["responses"]["409"]["description"]
    schemas = document["components"]["schemas"]
    assert {"Explanation", "Reason"} <= set(schemas)
    assert set(schemas["Reason"]["properties"]) == {
        "feature",
        "label",
        "value",
        "value_label",
        "contribution",
        "text",
    }


def test_a_champion_without_a_reference_scores_but_explain_is_a_409(
    settings, champion_without_reference, typical, tmp_path
):
    with TestClient(create_app(replace(settings, tracking_uri=champion_without_reference))) as client:
        assert client.post("/predict", json=typical).status_code == 200
        response = client.post("/predict?explain=true", json=typical)
        assert response.status_code == 409
        assert response.json()["detail"].startswith("Champion version 1 was trained before explanations")
        # Bad input is still a 422 first.
        assert client.post("/predict?explain=true", json={**typical, "age": 300}).status_code == 422


def test_explain_refuses_a_batch_above_its_limit_before_logging(settings, typical):
    with TestClient(create_app(replace(settings, explain_max_batch=3))) as client:
        assert len(client.post("/predict?explain=true", json=[typical] * 3).json()["predictions"]) == 3
        logged = sorted(settings.prediction_log_dir.rglob("*.csv"))
        lines_before = sum(len(p.read_text().splitlines()) for p in logged)
        answer = client.post("/predict?explain=true", json=[typical] * 4)
        assert answer.status_code == 422
        assert answer.json()["detail"] == (
            "explain=true explains at most 3 road users per request (BAAC_EXPLAIN_MAX_BATCH); this "
            "batch holds 4: send it in smaller batches, or without explain=true"
        )
        assert (
            sum(len(p.read_text().splitlines()) for p in settings.prediction_log_dir.rglob("*.csv"))
            == lines_before
        )
        assert len(client.post("/predict", json=[typical] * 4).json()["predictions"]) == 4  # without explain
