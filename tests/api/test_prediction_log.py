"""The prediction log: append-only CSV per process and day, group commit (a request is
answered after the fsync that covers it), and compaction of closed days into Parquet."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from api import prediction_log as prediction_log_module
from api.prediction_log import (
    COMPACTED_FILE,
    PredictionLog,
    PredictionLogError,
    compact,
    format_rows,
    read_day,
    read_prediction_log,
)
from ml.defaults import PROJECT_ROOT

LABELS = ["unhurt", "light injury", "hospitalised", "killed"]


def lines_for(spec, logged_at: datetime, request_id: str, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(0, 100, size=(rows, len(spec.names)))
    inputs[rng.random(inputs.shape) < 0.2] = np.nan
    proba = rng.dirichlet(np.ones(4), size=rows)
    severities = np.array([1, 2, 3, 4])[proba.argmax(axis=1)]
    header, lines = format_rows(
        logged_at, request_id, spec.names, inputs, severities, LABELS, proba, "m", "7"
    )
    return (header, lines), inputs


def test_rows_are_written_in_full_and_read_back_exactly(spec, tmp_path):
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    lines, inputs = lines_for(spec, now, "r1", 3, seed=0)
    log = PredictionLog(tmp_path)
    try:
        log.append(now.date(), *lines)
    finally:
        log.close()
    (path,) = (tmp_path / "date=2024-05-01").iterdir()
    assert path.name == f"predictions-{os.getpid()}.csv"
    rows = read_prediction_log(tmp_path)
    assert list(rows["request_row"]) == [0, 1, 2] and set(rows["request_id"]) == {"r1"}
    np.testing.assert_array_equal(rows[spec.names].to_numpy(), inputs)  # NaN where null, floats exact
    assert rows["logged_at"].iloc[0] == pd.Timestamp(now)
    assert set(rows["model_version"]) == {"7"}


def test_few_rows_are_formatted_as_arrow_formats_many(spec, tmp_path, monkeypatch):
    now = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    (header, in_python), inputs = lines_for(spec, now, 'r"1', 5, seed=3)
    monkeypatch.setattr(prediction_log_module, "ARROW_MIN_ROWS", 0)
    (arrow_header, by_arrow), _ = lines_for(spec, now, 'r"1', 5, seed=3)
    assert header == arrow_header
    for name, lines in (("python", in_python), ("arrow", by_arrow)):
        folder = tmp_path / name / "date=2024-05-01"
        folder.mkdir(parents=True)
        (folder / "predictions-1.csv").write_bytes(header + lines)
    python_rows = read_prediction_log(tmp_path / "python")
    pd.testing.assert_frame_equal(python_rows, read_prediction_log(tmp_path / "arrow"))
    np.testing.assert_array_equal(python_rows[spec.names].to_numpy(), inputs)
    assert (
        python_rows["logged_at"].iloc[0] == pd.Timestamp(now) and python_rows["request_id"].iloc[0] == 'r"1'
    )


def test_concurrent_appends_share_commits_and_all_land(spec, tmp_path, monkeypatch):
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(prediction_log_module.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    log = PredictionLog(tmp_path, commit_interval=0.05)
    today = datetime.now(UTC)
    errors = []

    def one_request(i: int) -> None:
        try:
            log.append(today.date(), *lines_for(spec, datetime.now(UTC), f"request-{i:03d}", 2, seed=i)[0])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=one_request, args=(i,)) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert errors == []
    rows = read_prediction_log(tmp_path)
    assert len(rows) == 120 and rows["request_id"].nunique() == 60
    assert rows["logged_at"].is_monotonic_increasing  # ordered by time
    assert len(fsyncs) < 60  # requests waiting together were released by one fsync


def test_a_commit_that_fails_fails_every_request_it_covered_and_the_log_recovers(spec, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the log wants a folder")
    log = PredictionLog(blocker)
    now = datetime.now(UTC)
    with pytest.raises(PredictionLogError):
        log.append(now.date(), *lines_for(spec, now, "r", 1, seed=0)[0])
    blocker.unlink()  # the disk is back
    log.append(now.date(), *lines_for(spec, now, "r2", 1, seed=1)[0])
    log.close()
    assert list(read_prediction_log(blocker)["request_id"]) == ["r2"]


def test_a_line_cut_short_by_a_crash_is_left_out(spec, tmp_path):
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    folder = tmp_path / "date=2024-05-01"
    folder.mkdir()
    (header, lines), _ = lines_for(spec, now, "r1", 2, seed=0)
    (folder / "predictions-1.csv").write_bytes(header + lines + lines[:40])
    assert len(read_day(tmp_path, now.date())) == 2


def append_days(spec, directory, days: list[date]) -> None:
    log = PredictionLog(directory)
    try:
        for i, day in enumerate(days):
            logged_at = datetime(day.year, day.month, day.day, 10, i, tzinfo=UTC)
            log.append(day, *lines_for(spec, logged_at, f"request-{i}", 3, seed=i)[0])
    finally:
        log.close()


def test_compaction_turns_closed_days_into_one_parquet_file_with_the_same_rows(spec, tmp_path):
    today = date(2024, 5, 3)
    days = [date(2024, 5, 1), date(2024, 5, 1), date(2024, 5, 2), today]
    append_days(spec, tmp_path, days)
    before = {day: read_day(tmp_path, day) for day in set(days)}

    assert compact(tmp_path, today=today, quiet_seconds=0) == {date(2024, 5, 1): 6, date(2024, 5, 2): 3}
    for day in (date(2024, 5, 1), date(2024, 5, 2)):
        folder = tmp_path / f"date={day}"
        assert [p.name for p in folder.iterdir()] == [COMPACTED_FILE]
        compacted = pd.read_parquet(folder / COMPACTED_FILE)
        pd.testing.assert_frame_equal(compacted, before[day])
    assert [p.suffix for p in (tmp_path / f"date={today}").iterdir()] == [".csv"]  # today stays open
    # Analysts read every closed day with one glob, the day coming from the folder name.
    import duckdb

    count, dates = duckdb.sql(
        f"select count(*), count(distinct date) from read_parquet('{tmp_path}/**/*.parquet')"
    ).fetchone()
    assert (count, dates) == (9, 2)

    # Idempotent: nothing to fold, nothing rewritten.
    stamp = (tmp_path / "date=2024-05-01" / COMPACTED_FILE).stat().st_mtime_ns
    assert compact(tmp_path, today=today, quiet_seconds=0) == {}
    assert (tmp_path / "date=2024-05-01" / COMPACTED_FILE).stat().st_mtime_ns == stamp


def test_a_compaction_interrupted_before_removing_its_sources_counts_no_row_twice(spec, tmp_path):
    day = date(2024, 5, 1)
    append_days(spec, tmp_path, [day, day])
    (source,) = (tmp_path / f"date={day}").glob("*.csv")
    kept = source.read_bytes()
    compact(tmp_path, today=day + timedelta(days=1), quiet_seconds=0)
    source.write_bytes(kept)  # as if the process died between the rename and the unlink
    assert compact(tmp_path, today=day + timedelta(days=1), quiet_seconds=0) == {day: 6}
    assert len(pd.read_parquet(tmp_path / f"date={day}" / COMPACTED_FILE)) == 6


def test_per_request_parquet_files_of_earlier_versions_are_folded_in(spec, tmp_path):
    day = date(2024, 5, 1)
    append_days(spec, tmp_path, [day])
    legacy = read_day(tmp_path, day).drop(columns=["request_row"]).assign(request_id="legacy")
    legacy.to_parquet(tmp_path / f"date={day}" / "101010-legacy.parquet", index=False)
    assert compact(tmp_path, today=day + timedelta(days=1), quiet_seconds=0) == {day: 6}
    assert (
        sorted(pd.read_parquet(tmp_path / f"date={day}" / COMPACTED_FILE)["request_id"])
        == ["legacy"] * 3 + ["request-0"] * 3
    )


def test_a_day_still_being_written_is_not_compacted(spec, tmp_path):
    day = date(2024, 5, 1)
    append_days(spec, tmp_path, [day])
    assert compact(tmp_path, today=day + timedelta(days=1), quiet_seconds=3600) == {}


def test_compaction_from_the_command_line(spec, tmp_path):
    append_days(spec, tmp_path, [date(2024, 5, 1)])
    completed = subprocess.run(
        [sys.executable, "-m", "api.prediction_log", "compact", "--dir", str(tmp_path)]
        + ["--quiet-seconds", "0"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "2024-05-01: 3 rows" in completed.stdout
    assert (tmp_path / "date=2024-05-01" / COMPACTED_FILE).exists()


WORKER = """
import sys
from datetime import UTC, datetime
import numpy as np
from api.prediction_log import PredictionLog, format_rows
from ml.defaults import DBT_PROJECT_DIR
from ml.features import load_feature_spec
spec = load_feature_spec(DBT_PROJECT_DIR)
log = PredictionLog(sys.argv[1])
for i in range(50):
    X = np.full((1, len(spec.names)), float(i))
    now = datetime.now(UTC)
    severity, proba = np.array([1]), np.array([[0.5, 0.5]])
    lines = format_rows(now, f"{sys.argv[2]}-{i}", spec.names, X, severity, ["a", "b"], proba, "m", "1")
    log.append(now.date(), *lines)
log.close()
"""


def test_worker_processes_each_append_to_their_own_file(tmp_path):
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), f"worker{w}"], cwd=PROJECT_ROOT)
        for w in range(3)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    files = list(tmp_path.glob("date=*/predictions-*.csv"))
    assert sorted(f.name for f in files) == sorted(f"predictions-{w.pid}.csv" for w in workers)
    rows = read_prediction_log(tmp_path)
    assert len(rows) == 150 and rows["request_id"].nunique() == 150
