"""Arrival: a delivery in the landing folder goes through the landing sensor and the
automation conditions to a new model version and a champion decision (orchestration/
sensors.py, automation.py, driver.py), with no asset called by hand; a corrupted delivery
loads nothing; an unchanged one is not loaded again."""

from __future__ import annotations

import json
import os
import shutil

import dagster as dg
import pytest

from orchestration import settings
from orchestration.ingestion.delivery import check_delivery, year_ranges
from orchestration.sensors import FINGERPRINT_TAG, landing_sensor
from tests.conftest import FIXTURES_DIR, SAMPLE_DIR, query


@pytest.fixture
def landing(tmp_path, monkeypatch):
    folder = tmp_path / "landing"
    folder.mkdir()
    monkeypatch.setenv("BAAC_LANDING_DIR", str(folder))
    return folder


def deliver(landing, name: str, users=SAMPLE_DIR / "users.csv"):
    folder = landing / name
    shutil.copytree(SAMPLE_DIR, folder)
    shutil.copyfile(users, folder / "users.csv")
    return folder


def tick(cursor=None) -> dg.SensorResult:
    return landing_sensor(dg.build_sensor_context(cursor=cursor))


def test_the_cursor_does_not_request_an_unchanged_delivery_again(landing):
    folder = deliver(landing, "2016")
    first = tick()
    [request] = first.run_requests
    assert request.job_name == "load_raw"
    assert request.tags["dagster/asset_partition_range_start"] == "2016"
    assert request.tags["dagster/asset_partition_range_end"] == "2016"
    assert request.run_config["resources"]["raw_source"]["config"]["local_dir"] == str(folder)
    assert json.loads(first.cursor)["2016"]["years"] == [2016]

    again = tick(first.cursor)
    assert not again.run_requests
    assert again.skip_reason.skip_message == f"no new or changed delivery in {landing}"

    # Touched, or copied again with the same bytes: same fingerprint, nothing requested.
    os.utime(folder / "users.csv", (1, 1))
    shutil.rmtree(folder)
    deliver(landing, "2016")
    touched = tick(again.cursor)
    assert not touched.run_requests

    # Republished with other content: requested again, under the new fingerprint.
    lines = (folder / "users.csv").read_text().splitlines(keepends=True)
    (folder / "users.csv").write_text("".join(lines[:-1]))
    changed = tick(touched.cursor)
    [request] = changed.run_requests
    assert request.tags[FINGERPRINT_TAG] != first.run_requests[0].tags[FINGERPRINT_TAG]


def test_a_delivery_in_the_datagouv_layout_is_read_from_its_yearly_files(landing):
    folder = landing / "2016-datagouv"
    folder.mkdir()
    for kaggle, stem in (
        ("caracteristics", "caracteristiques"),
        ("places", "lieux"),
        ("users", "usagers"),
        ("vehicles", "vehicules"),
    ):
        shutil.copyfile(SAMPLE_DIR / f"{kaggle}.csv", folder / f"{stem}_2016.csv")
    check = check_delivery(folder)
    assert check.problems == [] and check.years == [2016]
    assert check.rows == {
        "caracteristics": 2237,
        "places": 2237,
        "users": 4998,
        "vehicles": 3640,
        "holidays": 132,
    }
    [request] = tick().run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2016"


def test_a_corrupted_delivery_is_refused_whole_and_the_sensor_says_why(landing, warehouse):
    deliver(landing, "2016-bad", users=FIXTURES_DIR / "corrupted" / "users.csv")
    result = tick()
    assert not result.run_requests
    reason = result.skip_reason.skip_message
    assert reason.startswith("delivery 2016-bad refused, nothing of it loaded: 7 line(s) would be rejected")
    assert "users.csv line 5: grav" in reason and "users.csv line 8: sexe" in reason
    assert not warehouse.exists()  # nothing ran, not even the tables that were fine
    # The same bytes are not checked again; a corrected delivery would be (new fingerprint).
    assert not tick(result.cursor).run_requests
    assert json.loads(result.cursor)["2016-bad"]["outcome"] == "refused"


def test_sensors_are_on_by_default_and_conditions_set(tmp_path):
    from orchestration.automation import AUTOMATION_SENSOR
    from orchestration.definitions import build_definitions
    from orchestration.sensors import LANDING_SENSOR

    defs = build_definitions()
    for name in (LANDING_SENSOR, AUTOMATION_SENSOR):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    labels = {key.to_user_string(): graph.get(key).automation_condition for key in graph.get_all_asset_keys()}
    assert labels["marts/ml_features"].get_label() == "after_a_delivery"
    assert labels["codebook/baac_codes"].get_label() == "after_a_delivery"
    assert labels["champion_model"].get_label() == "eager"
    assert labels["raw/users"] is None  # the landing sensor loads raw data
    # The project's instance queues runs one at a time (DuckDB has one writer).
    shutil.copyfile(settings.DATA_DIR / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_contiguous_years_load_in_one_run_each():
    assert year_ranges([2016]) == [["2016"]]
    assert year_ranges([2013, 2015, 2014, 2017]) == [["2013", "2014", "2015"], ["2017"]]


def test_a_delivery_reaches_a_champion_through_the_sensor_and_the_automation(
    landing, warehouse, tmp_path, monkeypatch
):
    """One pipeline execution: the whole sample delivered once."""
    from ml import registry
    from orchestration.definitions import build_definitions
    from orchestration.driver import LoopDriver
    from orchestration.replay import is_dbt_run
    from orchestration.report import completed, materialization_metadata

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", str(tmp_path / "mlflow-artifacts"))
    (tmp_path / "dagster_home").mkdir()
    defs = build_definitions()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    driver = LoopDriver(defs, instance)
    assert not driver.settle().runs  # nothing delivered, nothing to do

    deliver(landing, "2016")
    result = driver.tick()

    # The sensor: one run loading every raw table's 2016 partition from the delivery.
    [load] = result.sensor_runs
    assert completed(load)
    raw = {
        (e.asset_key.to_user_string(), e.partition)
        for e in load.get_asset_materialization_events()
        if e.partition
    }
    assert raw == {
        (f"raw/{t}", "2016") for t in ("caracteristics", "places", "users", "vehicles", "holidays")
    }
    for event in load.get_asset_materialization_events():  # read from the delivery, not the sample
        files = event.step_materialization_data.materialization.metadata.get("source_files")
        if files is not None:
            assert all(f.startswith(str(landing / "2016")) for f in files.value)
    # The automation: one run, one dbt build (every dbt asset) and the ML chain after it.
    [run] = result.automation_runs
    assert completed(run)
    [selection] = result.automation_selections
    dbt_assets = defs.resolve_assets_def(dg.AssetKey(["marts", "ml_features"])).keys
    ml_assets = ("severity_model", "severity_model_evaluation", "champion_model", "severity_model_robustness")
    assert set(dbt_assets) | {dg.AssetKey(k) for k in ml_assets} == set(selection)
    assert is_dbt_run(selection)
    dbt_steps = [e for e in run.all_events if e.is_step_start and "dbt" in e.step_key]
    assert len(dbt_steps) == 1

    metadata = materialization_metadata(run)
    robustness, champion = metadata["severity_model_robustness"], metadata["champion_model"]
    assert robustness["oot_cut"] == "one year only: 2016 months 10-12 scored by a model trained on months 1-9"
    assert 0 < robustness["oot_macro_f1"] < 1 and 0.5 < robustness["oot_severe_roc_auc"] <= 1
    assert champion["challenger_version"] == "1" and champion["champion_version"] == "1"
    assert (champion["promoted"], champion["reason"]) == (True, "no champion yet")
    client = registry.configure_tracking(os.environ["MLFLOW_TRACKING_URI"])
    run_data = client.get_run(client.get_model_version(registry.REGISTERED_MODEL, "1").run_id).data
    assert run_data.metrics["oot_macro_f1"] == pytest.approx(robustness["oot_macro_f1"], abs=1e-4)
    assert run_data.params["oot_cut"] == robustness["oot_cut"]

    # Unchanged: no run. Corrupted beside it: refused, the loaded data untouched.
    assert not driver.tick().runs
    deliver(landing, "2016-bad", users=FIXTURES_DIR / "corrupted" / "users.csv")
    refused = driver.tick()
    assert not refused.runs and "2016-bad refused" in refused.skip_reason
    assert query(warehouse, "select count(*) from raw.users") == [(4998,)]
