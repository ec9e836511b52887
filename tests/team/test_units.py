"""The units of deploy/systemd read as commands, and team.env: no process started."""

from __future__ import annotations

import stat

import pytest

from ml.defaults import PROJECT_ROOT
from orchestration.mlflow_ui import SERVER_ENVIRONMENT
from orchestration.team.team_env import DEFAULT_PORTS, ensure_env, park_env
from orchestration.team.units import UnitError, read_unit, read_units


@pytest.fixture
def team_dir(tmp_path, monkeypatch):
    for name in DEFAULT_PORTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BAAC_API_PORT", "18001")
    return tmp_path / "team"


def test_team_env_is_private_generated_once_and_kept_across_down(team_dir):
    variables, generated = ensure_env(team_dir)
    assert generated
    path = team_dir / "team.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert variables["BAAC_API_PORT"] == "18001"  # from the environment
    assert variables["BAAC_MLFLOW_PORT"] == "5001" and variables["BAAC_DAGSTER_PORT"] == "3001"
    assert variables["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5001"
    assert variables["MLFLOW_AUTH_ADMIN_PASSWORD"] == variables["MLFLOW_TRACKING_PASSWORD"]
    assert (
        len(variables["BAAC_PG_PASSWORD"]) >= 24
        and variables["BAAC_PG_PASSWORD"] != variables["MLFLOW_TRACKING_PASSWORD"]
    )

    assert ensure_env(team_dir) == (variables, False)  # again: the same passwords
    park_env(team_dir)
    assert not path.exists()
    assert ensure_env(team_dir) == (variables, False)  # back from team.env.off


def test_a_missing_variable_is_added_without_touching_the_others(team_dir):
    variables, _ = ensure_env(team_dir)
    path = team_dir / "team.env"
    path.write_text(
        "\n".join(f"{k}={v}" for k, v in variables.items() if k != "MLFLOW_FLASK_SERVER_SECRET_KEY")
    )
    again, generated = ensure_env(team_dir)
    assert generated and again.keys() == variables.keys()
    assert {k: v for k, v in again.items() if k != "MLFLOW_FLASK_SERVER_SECRET_KEY"} == {
        k: v for k, v in variables.items() if k != "MLFLOW_FLASK_SERVER_SECRET_KEY"
    }


def test_units_read_as_this_checkout_in_dependency_order(team_dir):
    ensure_env(team_dir)
    units = {unit.name: unit for unit in read_units(team_dir)}
    order = list(units)
    assert order.index("baac-mlflow") < order.index("baac-api")
    assert (
        order.index("baac-dagster-code")
        < order.index("baac-dagster-webserver")
        < order.index("baac-dagster-daemon")
    )
    api = units["baac-api"]
    assert api.argv[0] == str(PROJECT_ROOT / ".venv" / "bin" / "python")
    assert api.argv[-4:] == ["--port", "18001", "--workers", "2"]
    assert api.working_directory == PROJECT_ROOT
    mlflow = units["baac-mlflow"]
    assert mlflow.working_directory == team_dir  # basic_auth.ini's user database lands there
    assert mlflow.environment["MLFLOW_AUTH_CONFIG_PATH"] == str(PROJECT_ROOT / "deploy/mlflow/basic_auth.ini")
    assert SERVER_ENVIRONMENT.items() <= mlflow.environment.items()  # as `make mlflow`
    assert f"{team_dir}/mlflow-artifacts" in mlflow.argv
    webserver = units["baac-dagster-webserver"]
    assert str(PROJECT_ROOT / "deploy" / "workspace.yaml") in webserver.argv
    assert not any("/opt/baac" in word for unit in units.values() for word in unit.argv)


def test_a_variable_missing_from_team_env_is_named(team_dir):
    variables, _ = ensure_env(team_dir)
    (team_dir / "team.env").write_text(
        "\n".join(f"{k}={v}" for k, v in variables.items() if k != "BAAC_API_PORT")
    )
    with pytest.raises(UnitError, match=r"baac-api.service ExecStart: \$\{BAAC_API_PORT\} is not set"):
        read_units(team_dir)


def test_without_team_env_the_units_say_to_run_team_up(tmp_path):
    with pytest.raises(UnitError, match="make team-up"):
        read_units(tmp_path)


def test_environment_lines_add_up_as_systemd_reads_them(tmp_path):
    unit = tmp_path / "made-up.service"
    unit.write_text(
        "[Unit]\nDescription=Environment= in a [Unit] section is not the service's\nEnvironment=NOT=this\n"
        "[Service]\nEnvironment=DROPPED=1\nEnvironment=\n"  # an empty one clears those before
        "Environment = A=1 'B=two words'\n# Environment=COMMENTED=1\nEnvironment=C=3\n"
        "ExecStart=/bin/true\n"
    )
    assert read_unit(unit, tmp_path).environment == {"A": "1", "B": "two words", "C": "3"}
    unit.write_text("[Service]\nEnvironment=A='unclosed\nEnvironment=B=2\nExecStart=/bin/true\n")
    with pytest.raises(UnitError, match="made-up.service: Environment="):
        read_unit(unit, tmp_path)
