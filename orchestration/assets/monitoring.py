"""Watching the model: the prediction log as an asset, the drift models' numbers as asset
metadata, and the daily schedule that rebuilds them.

The drift models themselves are dbt models (``dbt_project/models/monitoring``); their
``psi_below_alert_threshold`` tests are asset checks of severity WARN (dagster-dbt maps a
dbt test's ``warn`` severity to it), so a drifted feature is flagged, never blocking.
"""

import os

import dagster as dg

from orchestration import settings

GROUP = "monitoring"
PREDICTION_LOG_KEY = dg.AssetKey([GROUP, "prediction_log"])
#: The drift models and the column that names what each PSI row compares.
DRIFT_MODELS = {
    dg.AssetKey([GROUP, "drift_requests_by_day"]): "logged_on",
    dg.AssetKey([GROUP, "drift_newest_year"]): "newest_year",
}


def dbt_monitoring_env() -> dict[str, str]:
    """The paths dbt reads the log from and writes the drift files to, absolute: the views
    dbt creates over the Parquet files keep the path, and must resolve from any directory."""
    return {
        "BAAC_PREDICTION_LOG_DIR": str(settings.prediction_log_dir()),
        "BAAC_MONITORING_DIR": str(settings.monitoring_dir()),
    }


def prepare_dbt_monitoring_env() -> None:
    os.environ.update(dbt_monitoring_env())
    settings.monitoring_dir().mkdir(parents=True, exist_ok=True)


@dg.asset(
    key=PREDICTION_LOG_KEY,
    group_name=GROUP,
    description="The API's prediction log: each closed day (before today, UTC) compacted into "
    "one Parquet file that the drift models read in place (BAAC_PREDICTION_LOG_DIR).",
)
def prediction_log(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    # pandas and pyarrow: imported when the asset runs, not when the code location loads.
    from api.prediction_log import COMPACTED_FILE, compact, logged_days

    directory = settings.prediction_log_dir()
    compacted = compact(directory)
    for day, rows in compacted.items():
        context.log.info(f"{day}: {rows:,} predictions compacted into {COMPACTED_FILE}")
    days = logged_days(directory)
    closed = [day for day in days if (directory / f"date={day:%Y-%m-%d}" / COMPACTED_FILE).exists()]
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(directory)),
            "days_compacted_now": len(compacted),
            "rows_compacted_now": sum(compacted.values()),
            "closed_days": len(closed),
            "last_closed_day": str(closed[-1]) if closed else "none",
        }
    )


def drift_metadata(conn, asset_key: dg.AssetKey) -> dict:
    """``psi_<feature>`` of the newest day (or year) of a drift model, for the Dagster UI to
    plot over materializations; nothing for another asset or an empty model."""
    group_column = DRIFT_MODELS.get(asset_key)
    if group_column is None:
        return {}
    relation = ".".join(asset_key.path[-2:])
    rows = conn.execute(
        f"select {group_column}, feature, psi, is_above_threshold from {relation} "
        f"where {group_column} = (select max({group_column}) from {relation}) order by feature"
    ).fetchall()
    if not rows:
        return {}
    return {
        group_column: str(rows[0][0]),
        "features_above_threshold": sum(1 for row in rows if row[3]),
        **{f"psi_{feature}": float(psi) for _, feature, psi, _ in rows},
    }


monitoring_job = dg.define_asset_job(
    "monitoring",
    selection=dg.AssetSelection.groups(GROUP),
    description="Compact the prediction log's closed days, then rebuild and test the drift models.",
)


def monitoring_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="monitoring_daily",
        job=monitoring_job,
        cron_schedule=settings.monitoring_cron(),
        execution_timezone="UTC",
        # On by default: `make dev` runs the daemon, which starts it every day.
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every day, once yesterday's predictions can be compacted.",
    )
