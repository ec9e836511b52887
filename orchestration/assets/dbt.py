"""The dbt project as Dagster assets: seeds, staging, intermediate and marts, with every dbt
test as an asset check. dbt sources point at the raw assets, so it is one lineage graph."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration import settings

# dagster-dbt's own preparer (dbt parse under `dagster dev`) finds dbt on PATH only: put this
# environment's dbt first, whatever PATH the code server was started with.
_dbt_folder = str(Path(settings.dbt_executable()).parent)
if _dbt_folder != "." and _dbt_folder not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _dbt_folder + os.pathsep + os.environ.get("PATH", "")

dbt_project = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)
# `dagster dev` re-parses on start; elsewhere (make run, tests, a fresh clone) the manifest
# is made once if missing (the Makefile also re-parses before run and test).
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)


class LayeredDbtTranslator(DagsterDbtTranslator):
    """Groups dbt assets by layer: the folder under models/ (or `codebook` for seeds)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "codebook"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else super().get_group_name(dbt_resource_props)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=settings.dbt_executable())


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=LayeredDbtTranslator())
def baac_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build`: seeds, models, unit tests and data tests, in dependency order."""
    yield from dbt.cli(["build"], context=context).stream()
