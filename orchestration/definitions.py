"""The Dagster code location: every asset, resource and job of the project."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import baac_dbt_models, dbt_resource
from orchestration.assets.ml import champion_model, severity_model, severity_model_evaluation
from orchestration.assets.raw import raw_assets
from orchestration.resources import MlflowResource, RawSourceResource, WarehouseResource

raw_job = dg.define_asset_job("load_raw", selection=dg.AssetSelection.groups("raw"))

pipeline_job = dg.define_asset_job(
    "baac_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything: raw CSVs -> DuckDB -> dbt models -> trained, registered models.",
)

defs = dg.Definitions(
    assets=[*raw_assets, baac_dbt_models, severity_model, severity_model_evaluation, champion_model],
    jobs=[raw_job, pipeline_job],
    # DuckDB allows one writing process per database file, so the steps of a run share one
    # process and run one after the other (DuckDB itself uses every core inside a step).
    # Across runs, data/dagster_home/dagster.yaml queues runs one at a time.
    executor=dg.in_process_executor,
    resources={
        "warehouse": WarehouseResource(),
        "raw_source": RawSourceResource(),
        "dbt": dbt_resource(),
        "mlflow_store": MlflowResource(),
    },
)
