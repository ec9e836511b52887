"""``python -m orchestration.pipeline``: run the whole pipeline in this process.

This is what ``make run`` calls. It executes the ``baac_pipeline`` job against the
project's Dagster instance (``DAGSTER_HOME``), so the run shows up in the Dagster UI,
loading the years in ``BAAC_YEARS`` (default: every year; the shipped sample holds 2016).
"""

from __future__ import annotations

import argparse
import os
import sys

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration import settings
from orchestration.in_process import execute_in_process
from orchestration.resources import WarehouseResource


def partition_range_tags(years: list[str]) -> dict[str, str]:
    """Run tags that make one run cover the range of ``years`` (see settings.parse_years)."""
    return {ASSET_PARTITION_RANGE_START_TAG: years[0], ASSET_PARTITION_RANGE_END_TAG: years[-1]}


def run_pipeline(years: list[str], instance: dg.DagsterInstance, job_name: str = "baac_pipeline"):
    from orchestration.definitions import build_definitions

    job = build_definitions().resolve_job_def(job_name)
    return execute_in_process(
        job,
        instance=instance,
        tags=partition_range_tags(years),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--years",
        default=None,
        help="e.g. 2016 or 2005-2016 (default: BAAC_YEARS, else every year)",
    )
    parser.add_argument("--job", default="baac_pipeline")
    args = parser.parse_args(argv)
    years = settings.parse_years(args.years) if args.years else settings.pipeline_years()
    print(f"Running {args.job} for {years[0]}-{years[-1]} on {WarehouseResource().describe()}")
    # The project's instance, so that the run shows in the UI (the Makefile sets it too).
    os.environ.setdefault("DAGSTER_HOME", str(settings.DATA_DIR / "dagster_home"))
    result = run_pipeline(years, dg.DagsterInstance.get(), args.job)
    from orchestration.report import (
        completed,
        failure_summary,
        print_check_summary,
        print_model_summary,
        print_robustness_summary,
        print_run_summary,
    )

    if not completed(result):
        print(f"FAILED\n{failure_summary(result)}", file=sys.stderr)
        return 1

    print_run_summary(result)
    print_check_summary(result)
    print_model_summary(result)
    print_robustness_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
