"""The dbt project as Dagster assets: seeds, staging, intermediate and marts, with every dbt
test as an asset check. dbt sources point at the raw assets, so it is one lineage graph.

Nothing happens at import: the project is prepared (manifest parsed) the first time the
definitions are built, by ``baac_dbt_project()``.
"""

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.compat import DBT_PYTHON_VERSION

from orchestration import dbt_parse_cache, settings
from orchestration.assets.monitoring import drift_metadata, prepare_dbt_monitoring_env
from orchestration.automation import after_a_delivery
from orchestration.dbt_manifest import ensure_manifest
from orchestration.resources import WarehouseResource

#: Runs this environment's dbt so that it dies with the pipeline (see the script).
DBT_WITH_PARENT = Path(__file__).resolve().parent.parent / "dbt_with_parent"


class EnvironmentDbtCli(DbtCliResource):
    """dagster-dbt's resource for this environment's dbt, without two things each call paid
    for and nothing here uses: 7.2 s of the 23.6 s `dbt build` step on the sample (profiled).

    - ``dbt --version`` in a subprocess, to learn the version (2.8 s): the executable is this
      environment's dbt (``settings.dbt_executable``), so it is the installed dbt-core's,
      which dagster-dbt has already read (``DBT_PYTHON_VERSION``).
    - A dbt adapter built in this process (4.4 s: macros parsed, manifest loaded). It serves
      only ``fetch_row_counts()`` and ``fetch_column_metadata()``; the dbt asset reads row
      counts and column types itself once dbt is done. dagster-dbt runs without an adapter
      for the Fusion engine, so ``None`` is a state it handles.

    Both are private hooks of dagster-dbt (0.29): tests/test_definitions.py fails if a release
    renames them, instead of the 7 s coming back unnoticed."""

    @cached_property
    def _cli_version(self):
        return DBT_PYTHON_VERSION

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_cli() -> DbtCliResource:
    """This environment's dbt on the project (dagster-dbt would look for dbt on PATH), killed
    with the process that runs the pipeline."""
    os.environ.setdefault("BAAC_DBT", settings.dbt_executable())
    return EnvironmentDbtCli(project_dir=baac_dbt_project(), dbt_executable=str(DBT_WITH_PARENT))


@cache
def baac_dbt_project() -> DbtProject:
    """The dbt project, its manifest parsed: under `dagster dev` when the project changed (to
    pick up edits; orchestration.dbt_manifest), else once if missing (the Makefile parses
    before `run` and `test`). It is parsed with this environment's dbt: dagster-dbt's own
    preparer looks for dbt on PATH only, which a code server started by `dagster dev` may not
    have."""
    project = DbtProject(
        project_dir=settings.DBT_PROJECT_DIR,
        profiles_dir=settings.DBT_PROJECT_DIR,
        target_path=settings.dbt_target_path(),
    )
    if os.environ.get("DAGSTER_IS_DEV_CLI") or not project.manifest_path.exists():
        ensure_manifest(settings.DBT_PROJECT_DIR, settings.dbt_target_path())
    return project


def relation_asset_key(relation: str) -> dg.AssetKey:
    """The asset key of a dbt model or seed from its relation: ``marts.ml_features`` ->
    ``marts/ml_features`` (the rule of LayeredDbtTranslator)."""
    return dg.AssetKey(relation.split("."))


class LayeredDbtTranslator(DagsterDbtTranslator):
    """Keys are the warehouse relations (`marts/ml_features`); groups are the layers: the
    folder under models/ (or `codebook` for seeds)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed"):
            return relation_asset_key(f"{dbt_resource_props['schema']}.{dbt_resource_props['name']}")
        return super().get_asset_key(dbt_resource_props)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        return after_a_delivery()

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "codebook"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else super().get_group_name(dbt_resource_props)


def table_metadata(conn, asset_key: dg.AssetKey) -> dict:
    """Row count and column types of the warehouse table behind a dbt asset."""
    schema, name = asset_key.path[-2:]
    columns = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    if not columns:
        return {}
    (rows,) = conn.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t.lower()) for c, t in columns]),
    }


#: The pipeline's `dbt build` leaves out the unit tests, as dbt advises for production runs:
#: their inputs are fixed rows in the YAML, so they test the SQL, not the data, and give the
#: same answer on every run for the same code. `make test` runs them once
#: (tests/test_dbt_models.py). On the sample they were 1.6 s of the build's 8.3 s (19%).
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]

#: `dbt build` target folders kept (compiled SQL, run results, logs: about 10 MB each on the
#: sample); older ones are removed, so that runs every hour do not fill the disk.
RUN_FOLDERS_KEPT = 10


def run_target_path(context: dg.AssetExecutionContext) -> Path:
    """A `dbt build`'s own target folder, named as dagster-dbt names it (step, run, random)."""
    name = f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    return settings.DBT_PROJECT_DIR / settings.dbt_target_path() / name


def prune_run_folders(target_dir: Path, step_name: str, keep: int = RUN_FOLDERS_KEPT) -> list[Path]:
    """Remove all but the ``keep`` newest run folders of ``step_name`` in ``target_dir``;
    the removed ones. A folder that vanishes meanwhile (another process pruning) is skipped."""
    folders = [p for p in target_dir.glob(f"{step_name}-*") if p.is_dir()]
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    removed = folders[keep:]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def build_dbt_assets() -> dg.AssetsDefinition:
    @dbt_assets(manifest=baac_dbt_project().manifest_path, dagster_dbt_translator=LayeredDbtTranslator())
    def baac_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
        """`dbt build`: seeds, models and data tests, in dependency order; each
        table's row count and column types are recorded on its asset. They are read once dbt
        has finished (it holds the warehouse while it builds), not through dbt's adapter in
        this process, which would keep the file open with its own settings."""
        prepare_dbt_monitoring_env()
        target_path = run_target_path(context)
        cache_dir = settings.dbt_parse_cache_dir()
        dbt_parse_cache.seed_target(target_path, cache_dir)
        events = list(dbt.cli(BUILD_ARGS, context=context, target_path=target_path).stream())
        dbt_parse_cache.keep_parse(target_path, cache_dir)
        prune_run_folders(target_path.parent, context.op_execution_context.op.name)
        with warehouse.get_connection(read_only=True) as conn:
            for event in events:
                if isinstance(event, dg.Output):
                    key = context.asset_key_for_output(event.output_name)
                    event = event.with_metadata(
                        {**event.metadata, **table_metadata(conn, key), **drift_metadata(conn, key)}
                    )
                elif isinstance(event, dg.AssetMaterialization):
                    extra = {**table_metadata(conn, event.asset_key), **drift_metadata(conn, event.asset_key)}
                    event = event.with_metadata({**event.metadata, **extra})
                yield event

    return baac_dbt_models
