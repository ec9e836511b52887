"""The Dagster code location: every asset, resource and job of the project.

Loaded lazily (``@dg.definitions``): importing this module does nothing; Dagster, `make run`
and the tests call ``build_definitions()`` (built once per process).
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from orchestration.assets.dbt import build_dbt_assets, dbt_cli
from orchestration.assets.ml import (
    champion_model,
    severity_model,
    severity_model_evaluation,
    severity_model_robustness,
)
from orchestration.assets.monitoring import monitoring_job, monitoring_schedule, prediction_log
from orchestration.assets.raw import raw_assets, rejected_rows
from orchestration.automation import automation_sensor, with_ml_automation
from orchestration.resources import MlflowResource, RawSourceResource, WarehouseResource
from orchestration.sensors import landing_sensor

raw_job = dg.define_asset_job("load_raw", selection=dg.AssetSelection.groups("raw"))

pipeline_job = dg.define_asset_job(
    "baac_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything: raw CSVs -> DuckDB -> dbt models -> trained, registered models.",
)


@cache
def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *raw_assets,
            rejected_rows,
            build_dbt_assets(),
            *with_ml_automation(
                [severity_model, severity_model_evaluation, champion_model, severity_model_robustness]
            ),
            prediction_log,
        ],
        jobs=[raw_job, pipeline_job, monitoring_job],
        schedules=[monitoring_schedule()],
        # A delivery in the landing folder loads its years; the automation takes it from there.
        sensors=[landing_sensor, automation_sensor()],
        # DuckDB allows one writing process per database file, so the steps of a run share one
        # process and run one after the other (DuckDB itself uses every core inside a step).
        # Across runs, data/dagster_home/dagster.yaml queues runs one at a time.
        executor=dg.in_process_executor,
        resources={
            "warehouse": WarehouseResource(),
            "raw_source": RawSourceResource(),
            "dbt": dbt_cli(),
            "mlflow_store": MlflowResource(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
