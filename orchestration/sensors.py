"""The landing sensor: a new or changed delivery in the landing folder loads its years.

Each tick lists the delivery folders (orchestration/ingestion/delivery.py). A folder whose
files have the fingerprint recorded in the sensor's cursor is not looked at again; a new or
changed one is checked whole (a dry-run load in memory) and then:
- loadable: one run of ``load_raw`` per contiguous range of its years, reading from that
  folder (the raw source resource's run config), tagged with the delivery and fingerprint;
- not loadable: nothing is requested, and the reasons are in the sensor's log and its skip
  reason, which the Dagster UI shows on the sensor's ticks.
Either way the fingerprint goes into the cursor: the same content is not tried again; a
corrected delivery (new content) is.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from orchestration import settings
from orchestration.ingestion.delivery import (
    check_delivery,
    delivery_folders,
    fingerprint,
    stat_key,
    year_ranges,
)
from orchestration.pipeline import partition_range_tags

LANDING_SENSOR = "landing_sensor"
RAW_JOB = "load_raw"
DELIVERY_TAG = "baac/delivery"
FINGERPRINT_TAG = "baac/delivery_fingerprint"


def read_cursor(text: str | None) -> dict[str, dict]:
    """``{delivery folder name: {"stat", "fingerprint", "outcome"}}``."""
    return json.loads(text) if text else {}


def delivery_run_request(folder: Path, digest: str, years: list[str]) -> dg.RunRequest:
    """Load ``years`` (one contiguous range) of the delivery in ``folder``: one run, every raw
    table, each file read once."""
    return dg.RunRequest(
        run_key=f"{folder.name}:{digest[:16]}:{years[0]}-{years[-1]}",
        job_name=RAW_JOB,
        run_config={"resources": {"raw_source": {"config": {"kind": "local", "local_dir": str(folder)}}}},
        tags={**partition_range_tags(years), DELIVERY_TAG: folder.name, FINGERPRINT_TAG: digest},
    )


def evaluate_landing(landing: Path, cursor: dict[str, dict], log) -> tuple[list[dg.RunRequest], list[str]]:
    """The run requests for the new or changed deliveries under ``landing`` and the reasons
    refused ones were refused; updates ``cursor`` in place."""
    requests, refused = [], []
    for folder in delivery_folders(landing):
        seen = cursor.get(folder.name, {})
        stat = stat_key(folder)
        if seen.get("stat") == stat:
            continue
        digest = fingerprint(folder)
        if seen.get("fingerprint") == digest:  # touched or copied again, same content
            cursor[folder.name] = {**seen, "stat": stat}
            continue
        check = check_delivery(folder)
        if not check.loadable:
            reason = f"delivery {folder.name} refused, nothing of it loaded: " + " | ".join(check.problems)
            log.error(reason)
            refused.append(reason)
            cursor[folder.name] = {"stat": stat, "fingerprint": digest, "outcome": "refused"}
            continue
        ranges = year_ranges(check.years)
        log.info(
            f"delivery {folder.name} ({digest[:12]}): years {', '.join(map(str, check.years))}; "
            f"rows {check.rows}; {len(ranges)} load run(s)"
        )
        requests += [delivery_run_request(folder, digest, years) for years in ranges]
        cursor[folder.name] = {
            "stat": stat,
            "fingerprint": digest,
            "outcome": "requested",
            "years": check.years,
        }
    return requests, refused


@dg.sensor(
    name=LANDING_SENSOR,
    job_name=RAW_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Loads each new or changed delivery of the landing folder (BAAC_LANDING_DIR).",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    landing = settings.landing_dir()
    cursor = read_cursor(context.cursor)
    requests, refused = evaluate_landing(landing, cursor, context.log)
    skip = None
    if not requests:
        skip = " | ".join(refused) or f"no new or changed delivery in {landing}"
    return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=json.dumps(cursor, sort_keys=True))
