"""The cleaning rules on a real full year they were not built on: the official 2013 files,
through the data.gouv.fr path (a loopback mirror), then `dbt build`. The figures are those
of the audit of the staging rules (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess

import duckdb
import pytest
import yaml

from orchestration import settings
from orchestration.assets.dbt import BUILD_ARGS
from orchestration.ingestion.load import ensure_raw_schema
from orchestration.ingestion.tables import RAW_TABLES
from orchestration.resources import RawSourceResource
from tests.conftest import SAMPLE_DIR, LoopbackServer, query
from tests.test_raw_assets import materialize_raw

# Under make test one worker runs this file's tests in a row, so
# the real year loads and builds once (module fixture).
pytestmark = pytest.mark.xdist_group("real_year")


@pytest.fixture(scope="module")
def year_2013(tmp_path_factory):
    """A warehouse with the real 2013 accidents, places and vehicles (no road users: that file
    is not in ../shared), built by dbt; and dbt's run results."""
    from tests.conftest import SHARED_BAAC_DIR

    if not SHARED_BAAC_DIR.is_dir():
        message = f"{SHARED_BAAC_DIR} (the real 2013 files) is absent"
        pytest.fail(message + " in CI") if os.environ.get("CI") else pytest.skip(message)
    root = tmp_path_factory.mktemp("year2013")
    warehouse = root / "warehouse.duckdb"
    manifest = yaml.safe_load(settings.datagouv_manifest_path().read_text())
    with LoopbackServer(SHARED_BAAC_DIR / "datagouv_yearly" / "2013") as server:
        for entry in manifest["years"][2013].values():
            entry["url"] = f"{server.base_url}/{entry['file_name']}"
        (root / "mirror.yml").write_text(yaml.safe_dump(manifest))
        source = RawSourceResource(
            kind="datagouv",
            datagouv_manifest=str(root / "mirror.yml"),
            download_dir=str(root / "downloads"),
            local_dir=str(SAMPLE_DIR),
        )
        result = materialize_raw(
            warehouse, ["2013"], {"caracteristics", "places", "vehicles", "holidays"}, source
        )
        assert result.success
    with duckdb.connect(str(warehouse)) as conn:
        ensure_raw_schema(conn, RAW_TABLES["users"])
    completed = subprocess.run(
        [
            settings.dbt_executable(),
            *BUILD_ARGS,  # as the pipeline builds
            "--profiles-dir",
            ".",
            "--target-path",
            str(root / "target"),
            "-q",
        ],
        cwd=settings.DBT_PROJECT_DIR,
        env={**os.environ, "DUCKDB_PATH": str(warehouse)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    return warehouse, {r["unique_id"].split(".")[2]: r for r in results if r["unique_id"].startswith("test.")}


def test_every_row_of_the_year_is_staged_with_its_departement(year_2013):
    warehouse, _ = year_2013
    assert query(warehouse, "select count(*) from staging.stg_accidents") == [(58397,)]
    assert query(warehouse, "select count(*) from staging.stg_places") == [(58397,)]
    assert query(warehouse, "select count(*) from staging.stg_vehicles") == [(98925,)]
    assert query(warehouse, "select count(*) from staging.stg_accidents where department_code is null") == [
        (0,)
    ]


def test_hours_peak_at_five_pm_and_midnight_is_hrmn_1(year_2013):
    warehouse, _ = year_2013
    peak = query(
        warehouse, "select hour, count(*) from staging.stg_accidents group by 1 order by 2 desc limit 1"
    )
    assert peak == [(17, 5130)]
    assert query(warehouse, "select count(*) from staging.stg_accidents where hour = 0 and minute = 0") == [
        (149,)
    ]


def test_the_correze_points_three_degrees_east_are_flagged(year_2013):
    warehouse, tests = year_2013
    assert query(
        warehouse,
        "select coordinates_status, count(*) from intermediate.int_accident_locations "
        "where department_code = '19' group by 1 order by 1",
    ) == [("located", 64), ("not recorded", 86), ("outside its département", 75)]
    assert query(
        warehouse,
        "select coordinates_status from intermediate.int_accident_locations where num_acc = 201300020351",
    ) == [("outside its département",)]
    # The share of flagged points in Corrèze jumps: the check warns (one département), the year loads.
    (check,) = [r for name, r in tests.items() if name.startswith("flagged_coordinates_share_is_steady")]
    assert (check["status"], check["failures"]) == ("warn", 1)


def test_placeholders_and_overseas_signs(year_2013):
    warehouse, _ = year_2013
    assert query(
        warehouse,
        "select num_acc, coordinates_status from intermediate.int_accident_locations "
        "where num_acc in (201300008421, 201300020907) order by 1",
    ) == [(201300008421, "placeholder"), (201300020907, "placeholder")]
    # Réunion's latitudes come without their minus sign: all restored.
    assert query(
        warehouse,
        "select count(*), count(*) filter (where reported_latitude < 0) from staging.stg_accidents "
        "where department_code = '974' and reported_latitude is not null",
    ) == [(3, 3)]


def test_none_is_a_code_and_not_recorded_is_null(year_2013):
    warehouse, _ = year_2013
    rows = dict(
        (column, (none, not_recorded))
        for column, none, not_recorded in query(
            warehouse,
            "select column_name, none_or_not_applicable, not_recorded from marts.agg_code_recording_by_year "
            "where column_name in ('fixed_obstacle_code', 'mobile_obstacle_code', 'reserved_lane_code', "
            "'infrastructure_code')",
        )
    )
    total = query(warehouse, "select count(*) from raw.caracteristics")[0][0]
    assert set(rows) == {
        "fixed_obstacle_code",
        "mobile_obstacle_code",
        "reserved_lane_code",
        "infrastructure_code",
    }
    assert rows["reserved_lane_code"][0] > 0.8 * total  # 0 read as "none", no longer NULL
    assert all(not_recorded < 0.01 * total for _, not_recorded in rows.values())
