"""The dbt layer, built for real by the pipeline on the sample (its dbt build runs every data
test, and a failing one fails the pipeline run; the unit tests run here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import dagster as dg
import duckdb
from dagster_dbt import get_asset_key_for_model

from ml.contracts import BASELINE_FEATURES, ML_FEATURES
from orchestration import settings
from orchestration.assets.dbt import relation_asset_key
from orchestration.definitions import build_definitions
from tests.conftest import query, run_dbt


def test_fact_table_and_features_have_one_row_per_road_user(pipeline_run):
    wh = pipeline_run.warehouse
    assert query(wh, "select count(*) from marts.fct_road_users") == [(4998,)]
    assert query(wh, "select count(*) from marts.ml_features") == [(4998,)]
    assert query(wh, "select count(distinct road_user_id) from marts.fct_road_users") == [(4998,)]


def test_no_accident_is_in_two_splits_and_shares_are_60_20_20(pipeline_run):
    wh = pipeline_run.warehouse
    assert query(
        wh,
        "select count(*) from "
        "(select num_acc from marts.ml_features group by 1 having count(distinct split) > 1)",
    ) == [(0,)]
    # Accident-level counts of the 2,237 sample accidents: 60.1% / 20.4% / 19.5%.
    assert query(
        wh, "select split, count(*) from intermediate.int_accident_splits group by 1 order by 1"
    ) == [("test", 436), ("train", 1344), ("validation", 457)]


def test_split_is_md5_of_the_accident_number_reproducible_outside_sql(pipeline_run):
    import hashlib

    rows = query(pipeline_run.warehouse, "select num_acc, split_bucket from intermediate.int_accident_splits")
    for num_acc, bucket in rows:
        assert bucket == int(hashlib.md5(f"{num_acc}-42".encode()).hexdigest()[:8], 16) % 100


def test_severity_counts_match_the_raw_grav_counts(pipeline_run):
    # data/README.md: grav 1 unhurt 1,683; 4 light 956; 3 hospitalised 2,002; 2 killed 357.
    assert query(
        pipeline_run.warehouse,
        "select severity, severity_label, grav, count(*) from marts.fct_road_users group by all order by 1",
    ) == [
        (1, "unhurt", 1, 1683),
        (2, "light injury", 4, 956),
        (3, "hospitalised", 3, 2002),
        (4, "killed", 2, 357),
    ]


def test_labels_sit_beside_codes(pipeline_run):
    row = query(
        pipeline_run.warehouse,
        "select lighting, user_category, department_code, department, hour, minute "
        "from marts.fct_road_users where road_user_id = '201600000001-A01-1'",
    )
    assert row == [("full daylight", "driver", "59", "Nord (département 59)", 14, 45)]


def test_the_other_parties_of_real_road_users(pipeline_run):
    """Accident 201600000001: a moped (A01) and a car (B02). The moped's rider faces the
    car, the car's driver the moped. A pedestrian's other party is at least the vehicle that
    hit them (the one they are recorded with); nobody in a one-vehicle accident without
    pedestrians has another party."""
    rows = query(
        pipeline_run.warehouse,
        "select vehicle_id, vehicle_category, heaviest_other_vehicle, vehicles_in_accident, "
        "pedestrians_in_accident from marts.fct_road_users where num_acc = 201600000001 order by 1",
    )
    assert rows == [
        ("A01", "moped < 50 cc", "car", 2, 0),
        ("B02", "car / light vehicle (VL) alone", "motorised two-wheeler or quad", 2, 0),
    ]
    checks = query(
        pipeline_run.warehouse,
        """
        select
            count(*) filter (where users.user_category_code in (3, 4)
                and users.heaviest_other_vehicle_code < classes.mass_class_code),
            count(*) filter (where users.vehicles_in_accident = 1 and users.pedestrians_in_accident = 0
                and users.heaviest_other_vehicle_code != 0),
            count(*) filter (where users.vehicles_in_accident = 1 and users.pedestrians_in_accident = 0)
        from marts.fct_road_users as users
        inner join codebook.vehicle_mass_classes as classes
            on users.vehicle_category_code = classes.vehicle_category_code
        """,
    )
    assert checks == [(0, 0, 1070)]


def manifest_tests() -> set[str]:
    manifest = json.loads((settings.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    return {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "test"}


def test_every_dbt_test_ran_as_a_passing_asset_check(pipeline_run):
    evaluations = pipeline_run.result.get_asset_check_evaluations()
    dbt_checks = [
        e for e in evaluations if e.check_name not in ("no_rejected_rows", "beats_majority_baseline")
    ]
    assert [e.check_name for e in dbt_checks if not e.passed] == []
    # Every data test of the manifest, the two-parent singular test included (its config
    # names the asset it checks).
    assert sorted(e.check_name for e in dbt_checks) == sorted(manifest_tests())


def test_every_dbt_unit_test_passes_once_outside_the_pipeline(pipeline_run, tmp_path):
    """The pipeline's build leaves the unit tests out (orchestration/assets/dbt.py BUILD_ARGS):
    they run here, on the pipeline's warehouse, where the relations they read exist."""
    target = tmp_path / "target"
    run_dbt(["test", "--select", "test_type:unit", "-q"], {**os.environ, **pipeline_run.env}, target)
    # It started from the parse the pipeline's build kept for the same profile.
    assert "Unable to do partial parsing" not in (target / "dbt.log").read_text()
    results = json.loads((target / "run_results.json").read_text())["results"]
    manifest = json.loads((settings.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    assert len(manifest["unit_tests"]) == 15
    # The pipeline's own dbt command left them out.
    instance = dg.DagsterInstance.local_temp(str(pipeline_run.dagster_home))
    commands = [
        entry.user_message
        for entry in instance.all_logs(pipeline_run.result.run_id)
        if entry.user_message.startswith("Finished dbt command")
    ]
    assert len(commands) == 1 and " build --exclude-resource-type unit_test" in commands[0], commands
    assert {r["unique_id"]: r["status"] for r in results} == {uid: "pass" for uid in manifest["unit_tests"]}


def test_dbt_assets_report_row_counts_and_column_types(pipeline_run):
    events = pipeline_run.result.get_asset_materialization_events()
    materializations = {
        m.asset_key.to_user_string(): m for m in (e.step_materialization_data.materialization for e in events)
    }
    fact = materializations["marts/fct_road_users"].metadata
    assert fact["dagster/row_count"].value == 4998
    columns = {c.name: c.type for c in fact["dagster/column_schema"].value.columns}
    assert columns["severity_label"].lower() == "varchar" and columns["num_acc"].lower() == "bigint"


def test_raw_staging_and_marts_form_one_graph():
    dbt_assets = next(
        a for a in build_definitions().assets if getattr(a, "op", None) and a.op.name == "baac_dbt_models"
    )
    graph = build_definitions().resolve_asset_graph()

    def key(model: str) -> dg.AssetKey:
        return get_asset_key_for_model([dbt_assets], model)

    # The ML assets name the marts by their relation: the same keys as dagster-dbt gives them.
    assert key("ml_features") == relation_asset_key(ML_FEATURES)
    assert key("ml_baseline_features") == relation_asset_key(BASELINE_FEATURES)
    assert relation_asset_key(ML_FEATURES) in graph.get(dg.AssetKey("severity_model")).parent_keys
    assert dg.AssetKey(["raw", "caracteristics"]) in graph.get(key("stg_accidents")).parent_keys
    assert key("fct_road_users") in graph.get(key("ml_features")).parent_keys
    assert key("ml_features") == dg.AssetKey(["marts", "ml_features"])
    assert graph.get(key("stg_users")).group_name == "staging"
    assert graph.get(key("int_accident_splits")).group_name == "intermediate"
    assert graph.get(key("ml_features")).group_name == "marts"
    assert graph.get(dg.AssetKey(["codebook", "baac_codes"])).group_name == "codebook"


def test_dbt_docs_generate_describes_every_model(docs_target):
    target = docs_target
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    assert len(models) == 23
    undocumented = [
        f"{node['name']}.{column}"
        for node in models.values()
        for column in catalog["nodes"][node["unique_id"]]["columns"]
        if not node["columns"].get(column, {}).get("description")
    ]
    assert undocumented == []
    assert all(node["description"] for node in models.values())


#: Join operators DuckDB runs over every pair of rows when a join condition cannot be hashed
#: (an OR, an inequality alone). Harmless on the sample, they do not finish at national size.
#: (A CROSS_PRODUCT is written on purpose: with a one-row scalar subquery, as two models do.)
PAIRWISE_JOINS = re.compile(r"NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN")


def test_no_model_joins_every_pair_of_rows(pipeline_run, docs_target):
    """int_road_user_other_parties once joined road users to vehicles on ``num_acc = num_acc
    and (pedestrian or other vehicle)``: DuckDB planned it as a nested loop, 1.95 M x 1.42 M
    pairs at national size, and `dbt build` did not end. Every model's compiled SQL is
    planned (EXPLAIN) on the pipeline's warehouse, and none may join that way."""
    manifest = json.loads((docs_target / "manifest.json").read_text())
    models = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "external"
    ]
    assert len(models) == 20  # the drift models (external files of the prediction log) aside
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as conn:
        pairwise = {
            node["name"]: sorted(set(PAIRWISE_JOINS.findall(plan)))
            for node in models
            for _, plan in conn.execute("explain " + node["compiled_code"]).fetchall()
            if PAIRWISE_JOINS.search(plan)
        }
    assert pairwise == {}


def test_the_drift_deciles_read_from_counts_are_duckdbs_quantile_disc(pipeline_run, docs_target, tmp_path):
    """The drift models find a numeric feature's deciles from its value counts (macro
    psi_decile_edges: the rows are never kept whole in memory): the same values as
    quantile_disc over the rows, for every row count up to 600 and a national one, values
    repeated as ages and hours are."""
    target = shutil.copytree(docs_target, tmp_path / "target")  # its parse; the site stays whole
    edges = subprocess.run(
        [settings.dbt_executable(), "compile", "--profiles-dir", ".", "-q", "--target-path", str(target)]
        + ["--inline", "{{ psi_decile_edges('counts') }}"],
        cwd=settings.DBT_PROJECT_DIR,
        env={**os.environ, **pipeline_run.env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    con = duckdb.connect()
    for n in [*range(1, 601), 1_173_235]:
        values = f"cast(hash(i) % {max(2, n // 3)} as double) as value from range({n}) as r(i)"
        con.execute(f"create or replace table road_users as select {values}")
        con.execute(
            "create or replace table counts as select 'age' as feature, 'numeric' as feature_kind, value, "
            "count(*) as value_rows from road_users group by value"
        )
        deciles = "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]"
        expected = con.execute(f"select quantile_disc(value, {deciles}) from road_users").fetchone()[0]
        assert sorted(edge for _, edge in con.execute(edges).fetchall()) == sorted(set(expected)), n
