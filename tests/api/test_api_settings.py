"""ApiSettings.from_env: every setting from its environment variable, else a working default."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import ApiSettings
from ml.defaults import DATA_DIR, DBT_PROJECT_DIR

VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "BAAC_API_KEY",
    "BAAC_MODEL_REFRESH_SECONDS",
    "BAAC_PREDICTION_LOG_DIR",
    "BAAC_MONITORING_DIR",
    "BAAC_PREDICTION_LOG_COMMIT_MS",
    "BAAC_REGISTRY_TIMEOUT_SECONDS",
    "BAAC_API_MAX_BODY_BYTES",
    "BAAC_API_WORKERS",
)


def test_defaults_run_everything_embedded_under_data(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = ApiSettings.from_env()
    assert settings.tracking_uri == f"sqlite:///{DATA_DIR / 'mlflow' / 'mlflow.db'}"
    assert settings.api_key is None
    assert settings.refresh_seconds == 60
    assert settings.prediction_log_dir == DATA_DIR / "predictions"
    assert settings.monitoring_dir == DATA_DIR / "monitoring"
    assert settings.prediction_log_commit_ms == 2
    assert settings.registry_timeout_seconds == 5
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.dbt_project_dir == DBT_PROJECT_DIR
    assert settings.workers == 1


def test_the_environment_overrides_each_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("BAAC_API_KEY", "s3cret")
    monkeypatch.setenv("BAAC_MODEL_REFRESH_SECONDS", "0")
    monkeypatch.setenv("BAAC_PREDICTION_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("BAAC_MONITORING_DIR", str(tmp_path / "monitoring"))
    monkeypatch.setenv("BAAC_PREDICTION_LOG_COMMIT_MS", "0.5")
    monkeypatch.setenv("BAAC_REGISTRY_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("BAAC_API_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("BAAC_API_WORKERS", "2")
    settings = ApiSettings.from_env()
    assert settings == ApiSettings(
        tracking_uri="http://127.0.0.1:5000",
        api_key="s3cret",
        refresh_seconds=0,
        prediction_log_dir=Path(tmp_path / "log"),
        monitoring_dir=Path(tmp_path / "monitoring"),
        prediction_log_commit_ms=0.5,
        registry_timeout_seconds=3,
        max_body_bytes=1000,
        workers=2,
    )
    assert "s3cret" not in repr(settings)


def test_an_empty_api_key_leaves_the_service_open(monkeypatch):
    monkeypatch.setenv("BAAC_API_KEY", "")
    assert ApiSettings.from_env().api_key is None


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_number_of_workers_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("BAAC_API_WORKERS", value)
    with pytest.raises(ValueError, match="BAAC_API_WORKERS must be a whole number of at least 1"):
        ApiSettings.from_env()
