from pathlib import Path

import pytest

from orchestration import mlflow_ui, settings


def test_parse_years_accepts_a_year_or_a_range():
    assert settings.parse_years("2016") == ["2016"]
    assert settings.parse_years(" 2014-2016 ") == ["2014", "2015", "2016"]


@pytest.mark.parametrize("text", ["2004", "2016-2019", "2016-2014", "", "2013,2016", "20x6"])
def test_parse_years_rejects_years_outside_the_partitions(text):
    with pytest.raises(ValueError):
        settings.parse_years(text)


def test_paths_follow_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert settings.duckdb_path() == tmp_path / "w.duckdb"
    assert settings.mlflow_tracking_uri().startswith("sqlite:///")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert settings.mlflow_tracking_uri() == "http://127.0.0.1:5000"


def test_every_year_is_the_default(monkeypatch):
    monkeypatch.delenv("BAAC_YEARS", raising=False)
    assert settings.pipeline_years() == [str(y) for y in range(2005, 2019)]


def test_the_warehouse_is_duckdb_unless_told_postgres(monkeypatch):
    from ml.defaults import warehouse_kind

    monkeypatch.delenv("BAAC_WAREHOUSE", raising=False)
    assert warehouse_kind() == "duckdb"
    monkeypatch.setenv("BAAC_WAREHOUSE", "postgres")
    assert warehouse_kind() == "postgres"
    monkeypatch.setenv("BAAC_WAREHOUSE", "sqlite")
    with pytest.raises(ValueError, match="BAAC_WAREHOUSE must be one of duckdb, postgres, not 'sqlite'"):
        warehouse_kind()


def test_the_dbt_folders_follow_the_environment_they_are_asked_for(monkeypatch):
    """A dbt command run with another environment than this process's (tests' `run_dbt`)
    keeps its parse in that environment's target folder."""
    monkeypatch.delenv("BAAC_WAREHOUSE", raising=False)
    team = {"BAAC_WAREHOUSE": "postgres"}
    assert settings.dbt_target_path() == Path("target")
    assert settings.dbt_target_path(team) == Path("target-team")
    assert settings.dbt_parse_cache_dir(team) == settings.DBT_PROJECT_DIR / "target-team" / "partial_parse"
    monkeypatch.setenv("BAAC_WAREHOUSE", "postgres")
    assert settings.dbt_parse_cache_dir({}) == settings.DBT_PROJECT_DIR / "target" / "partial_parse"


def test_postgres_needs_its_password_and_defaults_the_rest(monkeypatch):
    from ml.defaults import postgres_settings

    for name in ("BAAC_PG_HOST", "BAAC_PG_PORT", "BAAC_PG_USER", "BAAC_PG_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="BAAC_PG_PASSWORD is not set"):
        postgres_settings()
    monkeypatch.setenv("BAAC_PG_PASSWORD", "secret")
    assert postgres_settings() == {"host": "127.0.0.1", "port": 55432, "user": "baac", "password": "secret"}
    monkeypatch.setenv("BAAC_PG_PORT", "5432x")
    with pytest.raises(ValueError, match="BAAC_PG_PORT"):
        postgres_settings()


def test_dbt_profile_names_a_wrong_warehouse_kind(tmp_path):
    import os
    import subprocess

    # dbt ls renders the profile (either target builds for real in the other tests).
    def dbt_ls(kind: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "BAAC_WAREHOUSE": kind, "BAAC_PG_PASSWORD": "x"}
        return subprocess.run(
            [
                settings.dbt_executable(), "ls", "--profiles-dir", ".", "--target-path", str(tmp_path),
                "--resource-type", "seed", "--output", "json", "--output-keys", "name", "-q",
            ],
            cwd=settings.DBT_PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
        )  # fmt: skip

    wrong = dbt_ls("sqlite")
    assert wrong.returncode != 0
    assert "BAAC_WAREHOUSE must be duckdb or postgres" in wrong.stdout + wrong.stderr


def test_a_run_folder_holds_every_store_of_its_run(tmp_path):
    """The replay and the benchmarks write nothing of the project's: the warehouse, the MLflow
    store and artifacts, the drift files and the prediction log all go under their folder."""
    environment = settings.stores_in(tmp_path)
    assert set(environment) == {
        "DUCKDB_PATH",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_ARTIFACT_ROOT",
        "BAAC_MONITORING_DIR",
        "BAAC_PREDICTION_LOG_DIR",
    }
    assert all(str(tmp_path) in value for value in environment.values())
    assert len(set(environment.values())) == len(environment)


def test_mlflow_servers_run_without_the_genai_job_workers_unless_the_user_asks(monkeypatch):
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    assert mlflow_ui.server_environment()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    assert mlflow_ui.server_environment()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
