"""The daemon's loop, in this process: tick the landing sensor, run what it requests, then
tick the automation until it requests nothing more.

``make dev`` has Dagster's daemon do this (sensors every 30 s, runs queued one at a time).
`make replay` and the tests drive the same sensor and the same automation conditions here,
against a real Dagster instance, so that a run happens only because the sensor or an
automation condition asked for it; runs execute one after the other, as the instance's
queue would have them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests

from orchestration.in_process import execute_in_process
from orchestration.sensors import LANDING_SENSOR


@dataclass
class Tick:
    """What one delivery set off: the sensor's runs, the automation's runs, and why the
    sensor requested nothing (if it did not)."""

    sensor_runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    automation_runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    #: Asset keys each automation run materialized, in order.
    automation_selections: list[list[dg.AssetKey]] = field(default_factory=list)
    skip_reason: str | None = None

    @property
    def runs(self) -> list[dg.ExecuteInProcessResult]:
        return self.sensor_runs + self.automation_runs


class LoopDriver:
    """The landing sensor and the automation condition sensor of ``defs`` on ``instance``,
    each with its cursor kept between ticks, as the daemon keeps them."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, max_automation_ticks: int = 10):
        self.defs = defs
        self.instance = instance
        self.max_automation_ticks = max_automation_ticks
        self.sensor_cursor: str | None = None
        self.automation_cursor = None
        self.sensor = defs.resolve_sensor_def(LANDING_SENSOR)

    def tick_sensor(self, tick: Tick) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.sensor_cursor,
            definitions=self.defs,
            sensor_name=LANDING_SENSOR,
        )
        result = self.sensor(context)
        self.sensor_cursor = result.cursor
        tick.skip_reason = result.skip_reason.skip_message if result.skip_reason else None
        return list(result.run_requests or [])

    def tick_automation(self) -> list[dg.RunRequest]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.automation_cursor
        )
        self.automation_cursor = result.cursor
        # What the daemon does with the requested subsets: group them into runs (one per
        # partitioning: the dbt and ML assets, all unpartitioned, in one run).
        return list(
            build_run_requests(
                entity_subsets=list(result._requested_subsets),
                asset_graph=self.defs.resolve_asset_graph(),
                run_tags={},
                emit_backfills=False,
            )
        )

    def run_sensor_request(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(request.job_name)
        return execute_in_process(
            job,
            run_config=request.run_config,
            instance=self.instance,
            tags=request.tags,
            raise_on_error=False,
        )

    def run_automation_request(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        return execute_in_process(
            job,
            instance=self.instance,
            asset_selection=list(request.asset_selection or []),
            partition_key=request.partition_key,
            tags=request.tags,
            raise_on_error=False,
        )

    def tick(self) -> Tick:
        """One sensor tick, its runs, then automation ticks (and their runs) until the
        automation requests nothing."""
        tick = Tick()
        for request in self.tick_sensor(tick):
            tick.sensor_runs.append(self.run_sensor_request(request))
        self.settle(tick)
        return tick

    def settle(self, tick: Tick | None = None) -> Tick:
        """Automation ticks until one requests nothing (at most ``max_automation_ticks``)."""
        tick = tick or Tick()
        for _ in range(self.max_automation_ticks):
            requests = self.tick_automation()
            if not requests:
                return tick
            for request in requests:
                tick.automation_selections.append(list(request.asset_selection or []))
                tick.automation_runs.append(self.run_automation_request(request))
        raise RuntimeError(f"the automation still requested runs after {self.max_automation_ticks} ticks")
