"""Raw ingestion assets, materialized for real into a DuckDB file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import dagster as dg
import pytest

from orchestration import settings
from orchestration.assets.raw import raw_assets
from orchestration.pipeline import partition_range_tags
from orchestration.resources import RawSourceResource, WarehouseResource
from tests.conftest import FIXTURES_DIR, SAMPLE_DIR, query

ALL_YEARS = settings.ACCIDENT_YEARS
SAMPLE_COUNTS = {
    "caracteristics": 2237,
    "places": 2237,
    "users": 4998,
    "vehicles": 3640,
    "holidays": 132,
}


def materialize_raw(warehouse, years, tables=None, raw_source=None, raise_on_error=True, instance=None):
    selected = [a for a in raw_assets if tables is None or a.key.path[-1] in tables]
    return dg.materialize(
        selected,
        resources={
            "warehouse": WarehouseResource(path=str(warehouse)),
            "raw_source": raw_source or RawSourceResource(kind="local", local_dir=str(SAMPLE_DIR)),
        },
        tags=partition_range_tags(years),
        raise_on_error=raise_on_error,
        instance=instance,
    )


def counts(warehouse) -> dict[str, int]:
    return {t: query(warehouse, f"select count(*) from raw.{t}")[0][0] for t in SAMPLE_COUNTS}


def test_backfill_of_every_year_loads_the_sample_exactly(warehouse):
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_raw(warehouse, ALL_YEARS, instance=instance)
        logs = instance.all_logs(result.run_id)
    assert result.success
    # A clean load warns of nothing (Dagster warned of a data version mismatch on every
    # table while the check result came after the per-year materializations).
    assert [e.user_message for e in logs if e.level >= logging.WARNING] == []
    assert counts(warehouse) == SAMPLE_COUNTS
    users = {m.partition: m.metadata for m in result.asset_materializations_for_node("raw__users")}
    assert users["2016"]["loaded_rows"].value == users["2016"]["dagster/row_count"].value == 4998
    assert users["2016"]["rejected_rows"].value == 0
    assert len(users["2016"]["preview"].value.records) == 5
    # One single-run backfill: each table materialized once for all 14 partitions.
    events = result.get_asset_materialization_events()
    materialized = {
        (
            e.step_materialization_data.materialization.asset_key,
            e.step_materialization_data.materialization.partition,
        )
        for e in events
    }
    assert len(materialized) == 5 * len(ALL_YEARS)
    # One step per table for all 14 years; each year has the run's event, then its own.
    assert len({e.step_key for e in events}) == 5 and len(events) == 2 * 5 * len(ALL_YEARS)
    assert query(warehouse, "select count(*) from raw.rejected_rows") == [(0,)]


def test_codes_and_lineage_are_kept_as_in_the_file(warehouse):
    materialize_raw(warehouse, ["2016"], tables={"caracteristics", "users"})
    row = query(
        warehouse,
        "select Num_Acc, hrmn, dep, com, lat, accident_year, source_file, loaded_at is not null "
        "from raw.caracteristics where Num_Acc = 201600000001",
    )
    assert row == [
        (201600000001, 1445, "590", "5", "0.0", 2016, str(SAMPLE_DIR / "caracteristics.csv"), True)
    ]
    # The Kaggle copy writes codes as 11.0: they are whole numbers once loaded.
    assert query(
        warehouse, "select secu from raw.users where Num_Acc = 201600000001 and num_veh = 'B02'"
    ) == [(11,)]


def test_rematerializing_a_partition_replaces_it(warehouse):
    materialize_raw(warehouse, ALL_YEARS)
    before = counts(warehouse)
    materialize_raw(warehouse, ["2016"])
    materialize_raw(warehouse, ["2015", "2016"])
    assert counts(warehouse) == before
    assert query(warehouse, "select count(distinct loaded_at) from raw.users") == [(1,)]


def test_each_year_partition_reports_its_own_rows(warehouse):
    """A run over every year: partition 2005 of the sample (which holds only 2016) says it has
    no rows, it is not shown with another year's."""
    result = materialize_raw(warehouse, ALL_YEARS, tables={"users"})
    by_year = {m.partition: m.metadata for m in result.asset_materializations_for_node("raw__users")}
    assert set(by_year) == set(ALL_YEARS)
    assert by_year["2005"]["loaded_rows"].value == 0
    assert by_year["2005"]["data"].value == "the source files hold no users row of 2005"
    assert by_year["2016"]["loaded_rows"].value == 4998
    check = result.get_asset_check_evaluations()[0]
    (account,) = check.metadata["lines_accounted"].value
    assert (account["data_lines"], account["loaded"], account["rejected"]) == (4998, 4998, 0)


def test_one_year_loads_only_that_year(warehouse):
    materialize_raw(warehouse, ["2015"], tables={"users", "holidays"})
    assert query(warehouse, "select count(*) from raw.users") == [(0,)]
    assert query(warehouse, "select count(*) from raw.holidays") == [(11,)]


def test_corrupted_rows_are_rejected_with_line_numbers_and_the_rest_loads(warehouse):
    source = RawSourceResource(kind="local", local_dir=str(FIXTURES_DIR / "corrupted"))
    result = materialize_raw(warehouse, ["2016"], tables={"users"}, raw_source=source)
    assert result.success
    assert query(warehouse, "select count(*) from raw.users") == [(10,)]
    rejected = query(
        warehouse,
        "select line_number, accident_year, column_name, reason, raw_line from raw.rejected_rows "
        "order by line_number nulls last, reason",
    )
    assert [(r[0], r[1], r[2]) for r in rejected] == [
        (5, 2016, "grav"),
        (8, 2016, "sexe"),
        (None, None, "Num_Acc"),
        (None, 2016, "an_nais"),
        (None, 2016, "grav"),
        (None, 2016, "grav"),
        (None, 2016, "place"),
    ]
    assert rejected[0][3].startswith("CAST:") and '"severe"' in rejected[0][3]
    assert rejected[0][4] == "201600000003,1.0,1,severe,2,0.0,11.0,0.0,0.0,0.0,1983,B02"
    assert rejected[1][3] == "MISSING COLUMNS: Expected Number of Columns: 12 Found: 4"
    assert [r[3] for r in rejected[2:]] == [
        "NO YEAR: no accident year can be read from Num_Acc (row Num_Acc=, num_veh=C04)",
        "NOT AN INTEGER: column an_nais holds 19830000000.0, not a whole number in INTEGER range "
        "(row Num_Acc=201600000004, num_veh=C02)",
        "NOT AN INTEGER: column grav holds 2.5, not a whole number in INTEGER range "
        "(row Num_Acc=201600000004, num_veh=A01)",
        "NOT AN INTEGER: column grav holds inf, not a whole number in INTEGER range "
        "(row Num_Acc=201600000004, num_veh=C01)",
        # Two bad columns, one reject: the first is named.
        "NOT AN INTEGER: column place holds 1.5, not a whole number in INTEGER range "
        "(row Num_Acc=201600000004, num_veh=C03)",
    ]
    # The run's materialization of 2016, then 2016's own (the latest, with its rows).
    run_event, materialization = result.asset_materializations_for_node("raw__users")
    assert run_event.partition == materialization.partition == "2016"
    assert materialization.metadata["loaded_rows"].value == 10
    # Six rejects have a year, 2016; the one without is not a row of any year.
    assert materialization.metadata["rejected_rows"].value == 6
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    # Loading again replaces the rejects; loading a clean file for the year clears them.
    materialize_raw(warehouse, ["2016"], tables={"users"}, raw_source=source)
    assert query(warehouse, "select count(*) from raw.rejected_rows") == [(7,)]
    materialize_raw(warehouse, ["2016"], tables={"users"})
    assert query(warehouse, "select count(*) from raw.rejected_rows") == [(0,)]
    assert query(warehouse, "select count(*) from raw.users") == [(4998,)]


def test_file_missing_a_column_fails_naming_file_and_column(warehouse, tmp_path):
    lines = (SAMPLE_DIR / "vehicles.csv").read_text().splitlines()
    header = lines[0].replace(",obsm", "")
    body = [",".join(f for i, f in enumerate(line.split(",")) if i != 5) for line in lines[1:4]]
    (tmp_path / "vehicles.csv").write_text("\n".join([header, *body]) + "\n")
    source = RawSourceResource(kind="local", local_dir=str(tmp_path))
    result = materialize_raw(warehouse, ["2016"], {"vehicles"}, source, raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("raw__vehicles").error.cause.message
    assert "vehicles.csv lacks the expected column(s) obsm" in message


def test_missing_file_fails_naming_it(warehouse, tmp_path):
    source = RawSourceResource(kind="local", local_dir=str(tmp_path))
    result = materialize_raw(warehouse, ["2016"], {"places"}, source, raise_on_error=False)
    message = result.failure_data_for_node("raw__places").error.cause.message
    assert f"places: file not found: {tmp_path / 'places.csv'}" in message


def test_kaggle_source_reads_the_dataset_kagglehub_returns(warehouse, monkeypatch):
    """kagglehub needs the internet: only its download call is replaced."""
    import kagglehub

    calls = []
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle: calls.append(handle) or str(SAMPLE_DIR))
    materialize_raw(warehouse, ["2016"], {"places"}, RawSourceResource(kind="kaggle"))
    assert calls == ["ahmedlahlou/accidents-in-france-from-2005-to-2016"]
    assert query(warehouse, "select count(*) from raw.places") == [(2237,)]


@pytest.mark.slow
def test_materialize_all_through_the_dagster_cli_uses_one_writer(tmp_path):
    """The code path of the UI: the job runs with the definitions' own executor."""
    env = {
        **os.environ,
        "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "orchestration.definitions",
            "-j",
            "load_raw",
            "--tags",
            '{"dagster/asset_partition_range_start": "2005", "dagster/asset_partition_range_end": "2018"}',
        ],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stderr + completed.stdout
    assert counts(tmp_path / "w.duckdb") == SAMPLE_COUNTS
