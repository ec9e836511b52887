"""Benchmark: the whole pipeline on a scaled-up copy of the sample, for timing and size only.

``python -m tests.benchmarks.scale_pipeline --copies 100`` writes, under a temporary folder,
Kaggle-layout files in which the real sample is repeated ``copies`` times (spread over
three leap years, each copy with its own accident numbers), runs `baac_pipeline` on them and prints
how long each step took and how large the warehouse and the MLflow artifacts are.

The repeated rows are not new data: any model metric on them is meaningless, so none is
printed. The full Kaggle data (1,876,005 road users) is about 375 copies.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb

from orchestration import settings

SAMPLE = settings.DATA_DIR / "sample"


def write_scaled_sample(target: Path, copies: int) -> None:
    """Repeat the sample's four BAAC tables ``copies`` times with distinct Num_Acc values:
    copy k goes to leap year 2008, 2012 or 2016 (the sample holds 29 February) with serials
    offset by 10,000 * (k // 3)."""
    target.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"create table copies as select range as k from range({copies})")
    year = "(2008 + 4 * (k % 3))"
    replaced = {
        "Num_Acc": f"({year} * 100000000 + Num_Acc::bigint % 100000000 + 10000 * (k // 3))::bigint",
        "an": f"({year} % 100)::varchar",
    }
    for name in ("caracteristics", "places", "users", "vehicles"):
        source = SAMPLE / f"{name}.csv"
        header = source.open(encoding="utf-8").readline().strip().split(",")
        columns = ", ".join(f"{replaced.get(c, c)} as {c}" for c in header)
        con.execute(
            f"copy (select {columns} from read_csv('{source}', all_varchar = true), copies) "
            f"to '{target / source.name}' (header, delimiter ',')"
        )
    (target / "holidays.csv").write_bytes((SAMPLE / "holidays.csv").read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_scaled_sample(root / "scaled", args.copies)
        print(f"wrote {args.copies} copies in {time.perf_counter() - started:.1f} s")
        os.environ.update(
            DUCKDB_PATH=str(root / "warehouse.duckdb"),
            MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
            MLFLOW_ARTIFACT_ROOT=str(root / "artifacts"),
            BAAC_SOURCE="local",
            BAAC_LOCAL_DIR=str(root / "scaled"),
        )
        import dagster as dg

        from orchestration.pipeline import run_pipeline

        result = run_pipeline(settings.parse_years("2005-2016"), dg.DagsterInstance.ephemeral())
        assert result.success, "pipeline failed"
        for event in result.all_events:
            if event.event_type_value == "STEP_SUCCESS":
                print(f"{event.step_key:<28} {event.event_specific_data.duration_ms / 1000:8.1f} s")
        users = (
            duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
            .execute("select count(*) from marts.fct_road_users")
            .fetchone()[0]
        )
        artifacts = sum(p.stat().st_size for p in (root / "artifacts").rglob("*") if p.is_file())
        print(f"road users: {users:,}")
        print(f"warehouse: {(root / 'warehouse.duckdb').stat().st_size / 1e6:.0f} MB")
        print(f"MLflow artifacts (model and both baselines): {artifacts / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
