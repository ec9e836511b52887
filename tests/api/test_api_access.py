"""BAAC_API_KEY: it guards /predict and /model/reload, and nothing else."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from api.main import create_app


def test_api_key_guards_predict_and_reload_only(settings, typical):
    with TestClient(create_app(replace(settings, api_key="s3cret"))) as client:
        assert client.post("/predict", json=typical).status_code == 401
        assert client.post("/predict", json=typical, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/predict", json=typical, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.post("/model/reload").status_code == 401
        assert client.post("/model/reload", headers={"X-API-Key": "s3cret"}).status_code == 202
        assert client.get("/health").status_code == 200
        assert client.get("/features").json()["api_key_required"] is True


def test_non_ascii_api_key_is_refused_not_a_crash(settings, typical):
    with TestClient(create_app(replace(settings, api_key="s3cret"))) as client:
        response = client.post("/predict", json=typical, headers={"X-API-Key": "clé".encode("latin-1")})
        assert response.status_code == 401
