"""Dagster resources: the DuckDB warehouse and the raw-file source, configured from settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration import settings
from orchestration.ingestion.sources import source_files
from orchestration.ingestion.tables import RawTable

class RawSourceResource(dg.ConfigurableResource):
    """Where raw BAAC CSVs come from (defaults from ``BAAC_*`` environment variables)."""

    kind: str = settings.raw_source_kind()
    local_dir: str = str(settings.local_source_dir())
    datagouv_manifest: str = str(settings.datagouv_manifest_path())
    download_dir: str = str(settings.download_cache_dir())

    def files_for(self, table: RawTable, years: list[int], log) -> list[Path]:
        return source_files(
            self.kind,
            table,
            years,
            local_dir=Path(self.local_dir),
            datagouv_manifest=Path(self.datagouv_manifest),
            download_dir=Path(self.download_dir),
            progress=log.info,
        )


def warehouse_resource() -> DuckDBResource:
    path = settings.duckdb_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBResource(database=str(path))
