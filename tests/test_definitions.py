"""The Dagster code location loads, and its graph is the one we document."""

import os
import subprocess
import sys
from importlib.metadata import version

import dagster as dg
import dagster_dbt.core.resource
from dagster_dbt import DbtCliResource

from orchestration import settings
from orchestration.assets.dbt import dbt_cli
from orchestration.definitions import build_definitions, defs


def test_definitions_load_with_every_asset_job_and_resource():
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert groups["ml"] == {
        "severity_model",
        "severity_model_evaluation",
        "champion_model",
        "severity_model_robustness",
    }
    assert groups["codebook"] == {
        "codebook/baac_codes",
        "codebook/baac_columns",
        "codebook/derived_codes",
        "codebook/department_bounds",
        "codebook/vehicle_mass_classes",
    }
    assert "marts/ml_features" in groups["marts"] and "staging/stg_users" in groups["staging"]
    assert {job.name for job in definitions.resolve_all_job_defs()} >= {"load_raw", "baac_pipeline"}
    assert set(definitions.resources) == {"warehouse", "raw_source", "dbt", "mlflow_store"}
    assert build_definitions() is build_definitions()  # built once per process


def test_the_monitoring_group_is_rebuilt_daily_by_a_schedule_on_by_default():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    monitoring = {
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "monitoring"
    }
    assert monitoring == {
        "monitoring/prediction_log",
        "monitoring/stg_prediction_log",
        "monitoring/drift_requests_by_day",
        "monitoring/prediction_mix_by_day",
        "monitoring/drift_newest_year",
    }
    # The log is the dbt source's asset: one lineage graph from the service's log to the drift.
    assert (
        dg.AssetKey(["monitoring", "prediction_log"])
        in graph.get(dg.AssetKey(["monitoring", "stg_prediction_log"])).parent_keys
    )
    schedule = definitions.resolve_schedule_def("monitoring_daily")
    assert schedule.job_name == "monitoring" and schedule.cron_schedule == "15 0 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_importing_the_definitions_does_no_work_and_loading_them_needs_no_ml_stack():
    """No dbt parse, no PATH edit, no manifest read at import: only when Dagster loads them.
    Loading them (as every Dagster process does, the UI's code server and each run) imports
    neither scikit-learn, MLflow, matplotlib nor pandas: the ML assets import them when they
    run (ml.contracts), which halved the load (10.5-12.6 s to 5.4-5.7 s on one machine)."""
    code = (
        "import os, sys; path = os.environ['PATH']; "
        "import orchestration.definitions, orchestration.assets.dbt as d; "
        "assert os.environ['PATH'] == path; assert d.baac_dbt_project.cache_info().currsize == 0; "
        "defs = orchestration.definitions.build_definitions(); "
        "defs.resolve_job_def('baac_pipeline'); defs.resolve_asset_graph(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sklearn', 'mlflow', 'matplotlib', 'scipy', 'pandas', 'pyarrow', 'numba'}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.PROJECT_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_the_dbt_resource_asks_no_dbt_version_and_builds_no_adapter(tmp_path, monkeypatch):
    """Both cost each `dbt build` step 7.2 s on the sample (orchestration.assets.dbt)."""
    # The hooks it overrides are dagster-dbt's: a release that renames them fails here.
    assert {"_cli_version", "_initialize_dbt_core_adapter"} <= set(vars(DbtCliResource))

    def no_subprocess(command, *args, **kwargs):
        raise AssertionError(f"dagster-dbt ran {command}")

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", no_subprocess)
    invocation = dbt_cli().cli(["parse", "--quiet"], target_path=tmp_path / "target").wait()
    assert invocation.adapter is None
    assert (tmp_path / "target" / "manifest.json").exists()
    # The version it assumes is the one the executable reports.
    reported = subprocess.run(
        [settings.dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {version('dbt-core')}" in reported
    assert str(invocation.cli_version) == version("dbt-core")


def test_raw_assets_are_one_per_table_in_the_raw_group():
    graph = build_definitions().resolve_asset_graph()
    raw = {key.to_user_string() for key in graph.get_all_asset_keys() if key.path[0] == "raw"}
    assert raw == {
        "raw/caracteristics",
        "raw/places",
        "raw/users",
        "raw/vehicles",
        "raw/holidays",
        "raw/rejected_rows",
    }
    # The rejects table is written by the five loads and read by dbt: in the graph between them.
    rejects = graph.get(dg.AssetKey(["raw", "rejected_rows"]))
    assert len(rejects.parent_keys) == 5 and not rejects.is_materializable
    for key in raw - {"raw/rejected_rows"}:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == "raw"
        assert node.partitions_def.get_partition_keys()[0] == "2005"


def test_code_location_loads_as_dagster_dev_starts_it(tmp_path):
    """`dagster dev` re-parses the dbt project, and its code server may start without
    .venv/bin on PATH: loading must still work."""
    env = {**os.environ, "DAGSTER_IS_DEV_CLI": "1", "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from orchestration.definitions import defs; "
            "print(len(defs().resolve_asset_graph().get_all_asset_keys()))",
        ],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "39"
