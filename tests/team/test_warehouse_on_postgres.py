"""The warehouse of the team profile on a real PostgreSQL: the shipped sample loaded by the raw
loader (DuckDB's checks, rows by COPY) and built by a real `dbt build` on the `team` target,
compared table by table with the same sample on DuckDB; the ML read identical; analysts answered
while a load or a build writes."""

from __future__ import annotations

import decimal
import json
import os
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pytest

from ml import data
from ml.defaults import DBT_PROJECT_DIR
from ml.evaluation import EVALUATION_SPLITS
from ml.features import load_feature_spec
from orchestration import settings
from orchestration.ingestion.csv_files import RawInputError
from orchestration.ingestion.load import load_raw_table
from orchestration.ingestion.tables import RAW_TABLES, USERS
from orchestration.ingestion.to_postgres import CopyTiming, load_raw_table_into_postgres
from orchestration.resources import WarehouseResource
from tests.conftest import FIXTURES_DIR, SAMPLE_DIR

YEARS = list(range(2005, 2019))
#: Every schema the pipeline writes in the warehouse (dbt's and the raw loader's).
SCHEMAS = ("raw", "codebook", "staging", "intermediate", "marts")


# Under make test one worker runs this file's tests in a row, so
# the sample builds once on each warehouse (module fixtures).
pytestmark = pytest.mark.xdist_group("warehouse_on_postgres")


@pytest.fixture(scope="module")
def team_env(postgres_cluster):
    """The team profile's variables for the session's cluster, undone after the module."""
    values = {
        "BAAC_WAREHOUSE": "postgres",
        "BAAC_PG_HOST": postgres_cluster.host,
        "BAAC_PG_PORT": str(postgres_cluster.port),
        "BAAC_PG_USER": postgres_cluster.user,
        "BAAC_PG_PASSWORD": postgres_cluster.password,
    }
    patch = pytest.MonkeyPatch()
    for name, value in values.items():
        patch.setenv(name, value)
    yield values
    patch.undo()


def open_warehouse(cluster):
    """A psycopg2 connection to the warehouse database (the caller closes it)."""
    return cluster.connect("baac_warehouse")


@contextmanager
def warehouse_connection(cluster):
    """A connection for a few statements: committed, then closed."""
    conn = open_warehouse(cluster)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def dbt(args: list[str], target_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [settings.dbt_executable(), *args, "--profiles-dir", ".", "--target-path", str(target_path)],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return result


@dataclass
class Built:
    duckdb_path: Path
    duckdb_target: Path
    postgres_target: Path
    duckdb_loads: dict
    postgres_loads: dict
    copy: CopyTiming
    load_seconds: float


@pytest.fixture(scope="module")
def built(team_env, postgres_cluster, tmp_path_factory) -> Built:
    """The sample in both warehouses: raw tables, then dbt (seeds and models on DuckDB: its
    tests are the embedded suite's; `dbt build` on PostgreSQL, every data test and unit test)."""
    root = tmp_path_factory.mktemp("team-warehouse")
    with warehouse_connection(postgres_cluster) as conn, conn.cursor() as cursor:
        cursor.execute(f"drop schema if exists {', '.join(SCHEMAS)} cascade")
    duckdb_path = root / "warehouse.duckdb"
    with duckdb.connect(str(duckdb_path)) as conn:
        duckdb_loads = {
            name: load_raw_table(conn, table, [SAMPLE_DIR / table.kaggle_file], YEARS)
            for name, table in RAW_TABLES.items()
        }
    copy = CopyTiming()
    started = time.perf_counter()
    pg = open_warehouse(postgres_cluster)
    try:
        postgres_loads = {
            name: load_raw_table_into_postgres(
                pg, table, [SAMPLE_DIR / table.kaggle_file], YEARS, timing=copy
            )
            for name, table in RAW_TABLES.items()
        }
    finally:
        pg.close()
    load_seconds = time.perf_counter() - started
    built = Built(
        duckdb_path,
        root / "target-duckdb",
        root / "target-postgres",
        duckdb_loads,
        postgres_loads,
        copy,
        load_seconds,
    )
    dbt(
        [
            "build",
            "--resource-type",
            "seed",
            "--resource-type",
            "model",
            "--exclude",
            "path:models/monitoring",
        ],
        built.duckdb_target,
        {"BAAC_WAREHOUSE": "duckdb", "DUCKDB_PATH": str(duckdb_path)},
    )
    dbt(["build"], built.postgres_target, team_env)
    print(
        f"sample raw load into PostgreSQL: {load_seconds:.2f} s; COPY {copy.rows:,} rows in "
        f"{copy.seconds:.3f} s ({copy.rows_per_second:,.0f} rows/s)"
    )
    return built


def manifest(target: Path) -> dict:
    return json.loads((target / "manifest.json").read_text())


def relations(target: Path) -> list[tuple[str, str]]:
    """Every model and seed of a build, as (schema, name)."""
    return sorted(
        (node["schema"], node["name"])
        for node in manifest(target)["nodes"].values()
        if node["resource_type"] in ("model", "seed") and node["config"]["enabled"]
    )


def normalised(rows) -> list[tuple]:
    """Rows comparable across the warehouses: PostgreSQL's numeric (sums, rounded rates) as
    the double DuckDB computes, doubles to 9 decimals, in one order."""

    def value(v):
        if isinstance(v, decimal.Decimal | float):
            return round(float(v), 9)
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def test_every_model_builds_on_postgres_and_every_test_passes(built):
    results = json.loads((built.postgres_target / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert {s for uid, s in statuses.items() if not uid.startswith("exposure.")} <= {"success", "pass"}
    pg, duck = manifest(built.postgres_target), manifest(built.duckdb_target)
    # The same project on both, but the drift models (DuckDB's alone: they read the prediction
    # log's files in place and write Parquet), their tests and unit tests.
    monitoring = {(s, n) for s, n in relations(built.duckdb_target) if s == "monitoring"}
    assert monitoring == {
        ("monitoring", "stg_prediction_log"),
        ("monitoring", "drift_requests_by_day"),
        ("monitoring", "drift_newest_year"),
        ("monitoring", "prediction_mix_by_day"),
    }
    assert relations(built.postgres_target) == sorted(set(relations(built.duckdb_target)) - monitoring)
    ran = {uid.split(".")[0] for uid in statuses}
    assert {"model", "seed", "test", "unit_test"} <= ran
    unit_tests = [u for u in pg["unit_tests"].values() if u["model"] not in {n for _, n in monitoring}]
    assert (
        len(unit_tests) == len(pg["unit_tests"]) == sum(1 for uid in statuses if uid.startswith("unit_test."))
    )
    assert len(pg["unit_tests"]) == len(
        [u for u in duck["unit_tests"].values() if u["model"] not in {n for _, n in monitoring}]
    )
    data_tests = [n for n in pg["nodes"].values() if n["resource_type"] == "test" and n["config"]["enabled"]]
    assert len(data_tests) == sum(1 for uid in statuses if uid.startswith("test.")) > 100
    disabled = [
        n["name"] for n in pg["nodes"].values() if n["resource_type"] == "test" and not n["config"]["enabled"]
    ]
    assert len(disabled) == 7 and all("prediction" in name or "drift" in name for name in disabled)


def test_every_table_holds_the_same_rows_on_both(built, postgres_cluster):
    """Row counts, and every value (but the load time), of every raw table, seed and model."""
    tables = [("raw", name) for name in [*RAW_TABLES, "rejected_rows"]] + relations(built.postgres_target)
    counts = {}
    with (
        duckdb.connect(str(built.duckdb_path), read_only=True) as duck,
        warehouse_connection(postgres_cluster) as pg,
        pg.cursor() as cursor,
    ):
        for schema, name in tables:
            columns = [
                c.lower()
                for (c,) in duck.execute(
                    "select column_name from information_schema.columns where table_schema = ? "
                    "and table_name = ? and column_name <> 'loaded_at' order by ordinal_position",
                    [schema, name],
                ).fetchall()
            ]
            select = f"select {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} from {schema}.{name}"
            expected = normalised(duck.execute(select).fetchall())
            cursor.execute(select)
            assert normalised(cursor.fetchall()) == expected, f"{schema}.{name} differs"
            counts[f"{schema}.{name}"] = len(expected)
    assert counts["marts.ml_features"] == counts["marts.fct_road_users"] == 4998
    assert counts["raw.caracteristics"] == 2237


def test_the_split_is_the_same_md5_rule_on_postgres(built, postgres_cluster):
    import hashlib

    with warehouse_connection(postgres_cluster) as pg, pg.cursor() as cursor:
        cursor.execute("select num_acc, split_bucket from intermediate.int_accident_splits")
        rows = cursor.fetchall()
        cursor.execute("select split, count(*) from intermediate.int_accident_splits group by 1 order by 1")
        assert cursor.fetchall() == [("test", 436), ("train", 1344), ("validation", 457)]
    assert len(rows) == 2237
    for num_acc, bucket in rows:
        assert bucket == int(hashlib.md5(f"{num_acc}-42".encode()).hexdigest()[:8], 16) % 100


def test_the_ml_read_on_postgres_is_the_duckdb_read(built):
    spec = load_feature_spec(DBT_PROJECT_DIR)
    # The whole marts (training), and the evaluation's read of some splits (ml.evaluation).
    with duckdb.connect(str(built.duckdb_path), read_only=True) as conn:
        features, baseline = data.read_training_tables(conn, spec)
        evaluated = data.read_features(conn, spec, EVALUATION_SPLITS)
    with WarehouseResource().get_connection(read_only=True) as conn:
        pg_features, pg_baseline = data.read_training_tables(conn, spec)
        pg_evaluated = data.read_features(conn, spec, EVALUATION_SPLITS)
    assert list(pg_features.dtypes) == list(features.dtypes)
    assert list(pg_baseline.dtypes) == list(baseline.dtypes)
    assert data.fingerprint(pg_features) == data.fingerprint(features)
    assert data.fingerprint(pg_baseline) == data.fingerprint(baseline)
    assert data.data_summary(pg_features) == data.data_summary(features)
    assert list(pg_evaluated.dtypes) == list(evaluated.dtypes)
    assert data.fingerprint(pg_evaluated) == data.fingerprint(evaluated)
    assert len(evaluated) == (features["split"] != "train").sum()


def raw_counts(cluster) -> dict[str, int]:
    with warehouse_connection(cluster) as pg, pg.cursor() as cursor:
        counts = {}
        for name in [*RAW_TABLES, "rejected_rows"]:
            cursor.execute(f"select count(*) from raw.{name}")
            counts[name] = cursor.fetchone()[0]
        return counts


def test_raw_loads_are_duckdbs_and_reloading_changes_nothing(built, postgres_cluster):
    for name, duck in built.duckdb_loads.items():
        pg = built.postgres_loads[name]
        assert (pg.loaded_rows, pg.rejected_rows, pg.loaded_by_year) == (
            duck.loaded_rows,
            duck.rejected_rows,
            duck.loaded_by_year,
        )
    before = raw_counts(postgres_cluster)
    assert before == {
        "caracteristics": 2237,
        "places": 2237,
        "users": 4998,
        "vehicles": 3640,
        "holidays": 132,
        "rejected_rows": 0,
    }
    conn = open_warehouse(postgres_cluster)
    try:
        for table in RAW_TABLES.values():
            load_raw_table_into_postgres(conn, table, [SAMPLE_DIR / table.kaggle_file], YEARS)
    finally:
        conn.close()
    assert raw_counts(postgres_cluster) == before


def test_bad_input_is_rejected_as_on_duckdb_and_a_shrinking_load_changes_nothing(
    built, postgres_cluster, tmp_path
):
    corrupted = FIXTURES_DIR / "corrupted" / "users.csv"
    conn = open_warehouse(postgres_cluster)
    try:
        # 10 rows where 4,998 are loaded: refused, nothing changed.
        with pytest.raises(RawInputError, match="would shrink loaded years"):
            load_raw_table_into_postgres(conn, USERS, [corrupted], [2016])
        assert raw_counts(postgres_cluster)["users"] == 4998
        result = load_raw_table_into_postgres(conn, USERS, [corrupted], [2016], allow_shrinking=True)
        with duckdb.connect(str(tmp_path / "w.duckdb")) as duck:
            expected = load_raw_table(duck, USERS, [corrupted], [2016])
            columns = "line_number, accident_year, column_name, reason, raw_line"
            duck_rejects = duck.execute(f"select {columns} from raw.rejected_rows").fetchall()
            duck_users = duck.execute("select * exclude (loaded_at) from raw.users").fetchall()
        assert (
            (result.loaded_rows, result.rejected_rows)
            == (expected.loaded_rows, expected.rejected_rows)
            == (10, 7)
        )
        with conn.cursor() as cursor:
            cursor.execute(f"select {columns} from raw.rejected_rows")
            assert normalised(cursor.fetchall()) == normalised(duck_rejects)
            names = ", ".join(f'"{c.lower()}"' for c in [*USERS.columns, "accident_year", "source_file"])
            cursor.execute(f"select {names} from raw.users")
            assert normalised(cursor.fetchall()) == normalised(duck_users)
        # The sample again: the rejects of 2016 go with the rows they came with.
        load_raw_table_into_postgres(conn, USERS, [SAMPLE_DIR / USERS.kaggle_file], YEARS)
    finally:
        conn.close()
    assert raw_counts(postgres_cluster)["users"] == 4998
    assert raw_counts(postgres_cluster)["rejected_rows"] == 0


class HeldCommit:
    """A psycopg2 connection whose commit waits until released: a load holding its transaction."""

    def __init__(self, conn):
        self._conn = conn
        self.holding = threading.Event()
        self.release = threading.Event()

    def cursor(self):
        return self._conn.cursor()

    def rollback(self):
        self._conn.rollback()

    def commit(self):
        self.holding.set()
        assert self.release.wait(60)
        self._conn.commit()


def test_an_analyst_reads_while_a_raw_load_holds_its_transaction(built, postgres_cluster):
    writer = HeldCommit(open_warehouse(postgres_cluster))
    errors = []

    def load():
        try:
            load_raw_table_into_postgres(
                writer, USERS, [FIXTURES_DIR / "corrupted" / "users.csv"], [2016], True
            )
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        assert writer.holding.wait(60), errors
        # The load has deleted 2016's 4,998 users and copied 10, uncommitted: the analyst (as
        # `make sql` opens it: read-only, answered within 2 s or failed) sees the last commit.
        with WarehouseResource().get_connection(read_only=True) as analyst:
            analyst.execute("set statement_timeout = 2000")
            assert analyst.execute("select count(*) from raw.users").fetchone() == (4998,)
            assert analyst.execute("select count(*) from marts.ml_features").fetchone() == (4998,)
    finally:
        writer.release.set()
        thread.join(60)
    assert not errors
    assert raw_counts(postgres_cluster)["users"] == 10
    conn = open_warehouse(postgres_cluster)
    try:
        load_raw_table_into_postgres(conn, USERS, [SAMPLE_DIR / USERS.kaggle_file], YEARS)
    finally:
        conn.close()
    writer._conn.close()


def test_an_analyst_reads_ml_features_while_dbt_rebuilds_it(built, team_env, tmp_path):
    """A real `dbt run` of the fact table and ml_features; meanwhile every query is answered
    (within 5 s) with the full table."""
    answers, stop = [], threading.Event()

    def read():
        with WarehouseResource().get_connection(read_only=True) as analyst:
            analyst.execute("set statement_timeout = 5000")
            while not stop.is_set():
                answers.append(analyst.execute("select count(*) from marts.ml_features").fetchone()[0])
                time.sleep(0.05)

    # The build's parse, reused (dbt then starts in seconds).
    (tmp_path / "target").mkdir()
    shutil.copy(built.postgres_target / "partial_parse.msgpack", tmp_path / "target")
    reader = threading.Thread(target=read)
    reader.start()
    try:
        dbt(["run", "--select", "fct_road_users", "ml_features"], tmp_path / "target", team_env)
    finally:
        stop.set()
        reader.join(30)
    assert len(answers) > 10
    assert set(answers) == {4998}


def test_a_wrong_password_is_refused_naming_the_server(team_env, monkeypatch):
    monkeypatch.setenv("BAAC_PG_PASSWORD", "not-the-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        with WarehouseResource().get_connection(read_only=True):
            pass


def test_the_raw_asset_loads_into_postgres_through_dagster(built, postgres_cluster):
    """The asset as `make run` materializes it, with the configured warehouse: a re-load of
    2016, its metadata and preview read back from PostgreSQL."""
    import dagster as dg

    from orchestration.assets.raw import raw_assets
    from orchestration.pipeline import partition_range_tags
    from orchestration.resources import RawSourceResource

    (users_asset,) = [a for a in raw_assets if a.key.path[-1] == "users"]
    result = dg.materialize(
        [users_asset],
        resources={
            "warehouse": WarehouseResource(),
            "raw_source": RawSourceResource(kind="local", local_dir=str(SAMPLE_DIR)),
        },
        tags=partition_range_tags(["2016"]),
    )
    assert result.success
    _, materialization = result.asset_materializations_for_node("raw__users")
    assert materialization.metadata["loaded_rows"].value == 4998
    preview = materialization.metadata["preview"].value
    assert preview.records[0].data["Num_Acc"] == "201600000001"
    assert raw_counts(postgres_cluster)["users"] == 4998


def test_the_readme_analyses_answer_the_same_on_postgres(built):
    """`make readme`'s blocks from the warehouse (the example analyses as an analyst types them
    in `make sql`, and the split), identical to the character on both warehouses."""
    from orchestration import readme_figures

    def blocks(warehouse: WarehouseResource) -> list[str]:
        with warehouse.get_connection(read_only=True) as conn:
            return [
                *(
                    readme_figures.analysis_block(conn, path.stem)
                    for path in sorted(readme_figures.ANALYSES.glob("*.sql"))
                ),
                readme_figures.split_block(conn),
            ]

    duck = blocks(WarehouseResource(path=str(built.duckdb_path), kind="duckdb"))
    assert blocks(WarehouseResource()) == duck
    assert len(duck) == 4
    assert "| full daylight | 3,385 | 45.8 | 6.3 |" in duck[2]
