"""POST /predict on the tiny champion: answers, batches, strict validation and its 422s, the log."""

from __future__ import annotations

import pytest

from api.prediction_log import read_prediction_log
from api.schemas import MAX_BATCH_SIZE
from ml.registry import REGISTERED_MODEL


def test_single_prediction(client, typical, champion):
    answer = client.post("/predict", json=typical).json()
    assert answer["model"] == {"name": REGISTERED_MODEL, "version": champion.version}
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


def test_types_are_strict_and_odd_json_gets_a_422(client, typical):
    for field, value in [
        ("lighting_code", True),
        ("lighting_code", "1"),
        ("lighting_code", 1.5),
        ("age", "36"),
        ("age", 36.5),
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


def test_every_prediction_is_logged(client, typical, tmp_path, champion):
    answer = client.post("/predict", json=[typical, {**typical, "age": 90}]).json()
    (day,) = tmp_path.glob("date=*")
    assert [p.suffix for p in day.iterdir()] == [".csv"]  # one file for this process
    log = read_prediction_log(tmp_path)
    assert len(log) == 2
    assert list(log["model_version"]) == [champion.version] * 2
    assert list(log["predicted_severity"]) == [p["severity"] for p in answer["predictions"]]
    assert list(log["age"]) == [typical["age"], 90.0]
    assert log["p_killed"].tolist() == pytest.approx(
        [p["probabilities"]["killed"] for p in answer["predictions"]]
    )


def test_a_probability_that_is_not_a_number_is_neither_logged_nor_sent(settings, typical):
    """JSON has no NaN: a champion that gave one would be a 500, not an answer."""
    from dataclasses import replace

    import numpy as np
    from fastapi.testclient import TestClient

    from api.deps import get_champion
    from api.main import create_app

    class NotANumber:
        classes_ = np.array([1, 2, 3, 4])

        def predict_proba(self, X):
            return np.full((len(X), 4), np.nan)

    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        broken = replace(client.app.state.store.model, scorer=NotANumber())
        app.dependency_overrides[get_champion] = lambda: broken
        assert client.post("/predict", json=typical).status_code == 500
        assert client.post("/predict", json=[typical, typical]).status_code == 500
    assert read_prediction_log(settings.prediction_log_dir).empty
