"""The drift models for real: the sample's pipeline, a prediction log with a known shift, the
daily `monitoring` job (log compaction, dbt build of the drift models, their checks and
metadata), and the prediction log as a dbt source when it is absent or not yet compacted."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pytest

from ml.defaults import DBT_PROJECT_DIR
from ml.features import load_feature_spec
from orchestration import settings
from orchestration.assets.monitoring import PREDICTION_LOG_KEY
from tests.conftest import query
from tests.drift import (
    DECILES,
    SHIFTED_DAY,
    SHIFTED_HOUR,
    UNCHANGED_DAY,
    feature_matrix,
    psi_by_hand,
    write_prediction_log,
)

DRIFT_BY_DAY = dg.AssetKey(["monitoring", "drift_requests_by_day"])


@pytest.fixture(scope="module")
def spec():
    return load_feature_spec(DBT_PROJECT_DIR)


def test_the_job_compacts_the_log_and_reads_every_logged_row(monitored_run):
    rows = len(monitored_run.train)
    (materialization,) = [
        m
        for m in monitored_run.result.get_asset_materialization_events()
        if m.asset_key == PREDICTION_LOG_KEY
    ]
    metadata = materialization.materialization.metadata
    assert metadata["days_compacted_now"].value == 2 and metadata["rows_compacted_now"].value == 2 * rows
    assert query(
        monitored_run.warehouse,
        "select logged_on, count(*) from monitoring.stg_prediction_log group by 1 order by 1",
    ) == [(UNCHANGED_DAY, rows), (SHIFTED_DAY, rows)]


def test_requests_like_the_training_rows_have_no_drift(monitored_run, spec):
    psi = query(
        monitored_run.warehouse,
        "select feature, psi, requests from monitoring.drift_requests_by_day "
        f"where logged_on = '{UNCHANGED_DAY}'",
    )
    assert sorted(f for f, _, _ in psi) == sorted(spec.names)
    assert {(p, n) for _, p, n in psi} == {(0.0, len(monitored_run.train))}


def test_a_shifted_hour_is_the_only_drift_and_its_psi_is_computed_by_hand(monitored_run, spec):
    rows = dict(
        query(
            monitored_run.warehouse,
            f"select feature, psi from monitoring.drift_requests_by_day where logged_on = '{SHIFTED_DAY}'",
        )
    )
    hours = feature_matrix(monitored_run.train, spec)[:, spec.names.index("hour")]
    expected = psi_by_hand(hours, np.full_like(hours, SHIFTED_HOUR), categorical=False)
    assert expected > 1  # every request in one bin of about a tenth of the training rows
    assert rows.pop("hour") == pytest.approx(expected, abs=5e-7)
    assert set(rows.values()) == {0.0}
    ((largest_bin, threshold, above),) = query(
        monitored_run.warehouse,
        "select largest_shift_bin, alert_threshold, is_above_threshold from monitoring.drift_requests_by_day "
        f"where logged_on = '{SHIFTED_DAY}' and feature = 'hour'",
    )
    assert threshold == 0.2 and above
    # 03:00 lies below the first training decile: every request in that first bin
    first_decile = np.quantile(hours[~np.isnan(hours)], DECILES, method="inverted_cdf")[0]
    assert SHIFTED_HOUR < first_decile and largest_bin == f"< {first_decile:g}"


def test_the_drift_check_warns_without_blocking(monitored_run):
    evaluations = {e.check_name: e for e in monitored_run.result.get_asset_check_evaluations()}
    by_day = evaluations["psi_below_alert_threshold_drift_requests_by_day_psi"]
    assert not by_day.passed and by_day.severity == dg.AssetCheckSeverity.WARN
    assert evaluations["psi_below_alert_threshold_drift_newest_year_psi"].passed
    assert monitored_run.result.success


def test_psi_per_feature_is_numeric_metadata_of_the_newest_day(monitored_run, spec):
    (materialization,) = [
        m.materialization
        for m in monitored_run.result.get_asset_materialization_events()
        if m.asset_key == DRIFT_BY_DAY
    ]
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["logged_on"] == str(SHIFTED_DAY) and metadata["features_above_threshold"] == 1
    assert {f"psi_{name}" for name in spec.names} <= set(metadata)
    assert metadata["psi_hour"] > 1 and metadata["psi_age"] == 0.0


def test_the_prediction_mix_counts_each_class_per_day(monitored_run):
    expected = monitored_run.train["severity"].value_counts().sort_index()
    mix = query(
        monitored_run.warehouse,
        "select predicted_severity, predicted_severity_label, predictions, share "
        f"from monitoring.prediction_mix_by_day where logged_on = '{UNCHANGED_DAY}' order by 1",
    )
    assert [(s, n) for s, _, n, _ in mix] == list(expected.items())
    assert [label for _, label, _, _ in mix] == ["unhurt", "light injury", "hospitalised", "killed"]
    assert sum(share for *_, share in mix) == pytest.approx(1, abs=1e-5)


def test_a_single_accident_year_has_no_year_drift_and_no_error(monitored_run):
    assert query(monitored_run.warehouse, "select count(*) from monitoring.drift_newest_year") == [(0,)]


def test_the_outputs_are_parquet_files_the_api_can_read_while_the_warehouse_is_locked(monitored_run):
    import duckdb

    from api.monitoring import read_monitoring

    writer = duckdb.connect(str(monitored_run.warehouse))  # holds the file: no other process may open it
    try:
        data = read_monitoring(monitored_run.monitoring_dir)
    finally:
        writer.close()
    assert len(data.drift_by_day) == 2 * len(load_feature_spec(DBT_PROJECT_DIR).names)
    assert data.newest_year_drift == [] and data.alert_threshold == 0.2
    assert any("single accident year" in note for note in data.notes)


def dbt_run_prediction_log(tmp_path, log_dir) -> list[tuple]:
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        "DUCKDB_PATH": str(warehouse),
        "BAAC_PREDICTION_LOG_DIR": str(log_dir),
        "BAAC_MONITORING_DIR": str(tmp_path / "monitoring"),
        "PATH": f"{settings.PROJECT_ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
    }
    done = subprocess.run(
        [settings.dbt_executable(), "run", "--profiles-dir", ".", "--select", "stg_prediction_log",
         "--target-path", str(tmp_path / "target")],
        cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    return query(warehouse, "select count(*), count(distinct logged_on) from monitoring.stg_prediction_log")


def test_an_absent_or_not_yet_compacted_log_is_an_empty_source(tmp_path, spec):
    # No folder at all: a new install, a service never started.
    assert dbt_run_prediction_log(tmp_path, tmp_path / "no-such-folder") == [(0, 0)]
    # Today's rows only: CSV lines that are not compacted yet.
    import pandas as pd

    today = datetime.now(UTC).date()
    rows = pd.DataFrame({name: [1.0] for name in spec.names} | {"severity": [2]})
    write_prediction_log(
        tmp_path / "log", spec, {today: rows}, ["unhurt", "light injury", "hospitalised", "killed"]
    )
    assert list((tmp_path / "log").rglob("*.parquet")) == []
    assert dbt_run_prediction_log(tmp_path, tmp_path / "log") == [(0, 0)]
