import pytest

from orchestration import settings


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
