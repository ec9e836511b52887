"""The replay's table reads the drift of each delivery from the drift models' files."""

import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.replay import DRIFT_NEWEST_YEAR, largest_feature_drift


def write_drift(folder, rows):
    columns = {"newest_year": pa.int32(), "feature": pa.string(), "psi": pa.float64()}
    table = pa.table({name: [row[name] for row in rows] for name in columns}, schema=pa.schema(columns))
    pq.write_table(table, folder / f"{DRIFT_NEWEST_YEAR}.parquet")


def test_the_largest_drift_names_its_feature_psi_and_year(tmp_path):
    write_drift(
        tmp_path,
        [
            {"newest_year": 2016, "feature": "age", "psi": 0.0412},
            {"newest_year": 2016, "feature": "hour", "psi": 0.2501},
            {"newest_year": 2016, "feature": "weather_code", "psi": 0.0008},
        ],
    )
    assert largest_feature_drift(tmp_path) == "hour 0.2501 (2016)"


def test_no_drift_for_a_single_year_or_before_the_models_are_built(tmp_path):
    assert largest_feature_drift(tmp_path) is None  # not built yet
    # dbt-duckdb writes an empty external model as one all-NULL row.
    write_drift(tmp_path, [{"newest_year": None, "feature": None, "psi": None}])
    assert largest_feature_drift(tmp_path) is None
