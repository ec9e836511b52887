"""A code the code book does not know never stops a year: it is kept, labelled, counted and
reported as a warning check, and the models downstream still build."""

from __future__ import annotations

import shutil

import dagster as dg

from orchestration.assets.dbt import build_dbt_assets, dbt_cli
from orchestration.assets.raw import raw_assets
from orchestration.pipeline import partition_range_tags
from orchestration.resources import RawSourceResource, WarehouseResource
from tests.conftest import SAMPLE_DIR, query


def test_a_year_with_an_unknown_code_loads_and_warns(tmp_path, warehouse):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, sample)
    lines = (sample / "places.csv").read_text().splitlines()
    header = lines[0].split(",")
    catr = header.index("catr")
    changed = 0
    for index in range(1, 11):  # ten places on a road category no code book lists
        fields = lines[index].split(",")
        fields[catr] = "8.0"
        lines[index] = ",".join(fields)
        changed += 1
    (sample / "places.csv").write_text("\n".join(lines) + "\n")

    result = dg.materialize(
        [*raw_assets, build_dbt_assets()],
        resources={
            "warehouse": WarehouseResource(path=str(warehouse)),
            "raw_source": RawSourceResource(kind="local", local_dir=str(sample)),
            "dbt": dbt_cli(),
        },
        tags=partition_range_tags(["2016"]),
        raise_on_error=False,
    )
    assert result.success
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "accepted_codes_stg_places_road_category_code"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["dagster_dbt/failed_row_count"].value == changed
    assert query(
        warehouse,
        "select road_category_code, road_category, count(*) from marts.fct_road_users "
        "where road_category_code = 8 group by all",
    ) == [
        (
            8,
            "unknown code 8",
            query(warehouse, "select count(*) from marts.fct_road_users where road_category_code = 8")[0][0],
        )
    ]
    assert query(
        warehouse,
        "select unknown_code from marts.agg_code_recording_by_year where column_name = 'road_category_code'",
    ) == [(changed,)]
    assert query(warehouse, "select count(*) from marts.ml_features") == [(4998,)]
