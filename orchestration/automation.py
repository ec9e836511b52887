"""Declarative automation: a delivery of raw data flows on to dbt and a new champion by itself.

The raw assets are loaded by the landing sensor (orchestration/sensors.py). After that:
- every dbt asset (seeds included) has one condition, "a raw table was updated since this
  asset was last handled", so they are all requested on the same tick: one run, one
  ``dbt build`` per delivery, however many year partitions it loaded. (Dagster's ``eager``
  would wait forever on the raw years never delivered, and on raw.rejected_rows, which no
  asset materializes.)
- the ML chain (challenger, its evaluation, the champion decision, its robustness) is ``eager``: it runs
  after the dbt marts it reads, in the same run when requested on the same tick.
The automation condition sensor that evaluates them is on by default; ``make dev`` runs the
daemon that ticks it.
"""

from __future__ import annotations

import functools
import operator

import dagster as dg

from orchestration.ingestion.tables import RAW_SCHEMA, RAW_TABLES

#: The raw assets a delivery loads.
RAW_KEYS = [dg.AssetKey([RAW_SCHEMA, table.name]) for table in RAW_TABLES.values()]

AUTOMATION_SENSOR = "baac_automation"


def _any_raw(condition: dg.AutomationCondition) -> dg.AutomationCondition:
    return functools.reduce(
        operator.or_, [dg.AutomationCondition.asset_matches(k, condition) for k in RAW_KEYS]
    )


def after_a_delivery() -> dg.AutomationCondition:
    """For dbt assets: some raw table was updated since this asset was last requested or
    updated, and no raw load (nor this asset) is in progress."""
    return (
        _any_raw(dg.AutomationCondition.newly_updated()).since_last_handled()
        & ~_any_raw(dg.AutomationCondition.in_progress())
        & ~dg.AutomationCondition.in_progress()
    ).with_label("after_a_delivery")


def ml_condition() -> dg.AutomationCondition:
    """For the ML chain: Dagster's eager (after any upstream update, none missing or running)."""
    return dg.AutomationCondition.eager()


def with_ml_automation(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The ML assets with ``ml_condition`` (kept here, not on each decorator: one place)."""
    return dg.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=ml_condition()), assets
    )


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every condition of the code location, on by default."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs dbt and the ML chain after a delivery (orchestration/automation.py).",
    )
