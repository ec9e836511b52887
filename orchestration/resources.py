"""Dagster resources: the warehouse (DuckDB, or PostgreSQL in the team profile) and the
raw-file source.

Unset fields fall back to the settings *when used*, not when this module is imported, so
a test or a user can set DUCKDB_PATH or BAAC_* after the definitions are loaded.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from ml.defaults import POSTGRES_WAREHOUSE_DATABASE, postgres_settings, warehouse_kind
from orchestration import settings
from orchestration.ingestion.load import LoadResult, load_raw_table
from orchestration.ingestion.sources import source_files
from orchestration.ingestion.tables import RawTable


class WarehouseLockedError(RuntimeError):
    """Another process held the warehouse for longer than we were willing to wait."""


def lock_holder(error: Exception) -> str:
    """The process DuckDB names in a lock error, with its command line when it can be read."""
    match = re.search(r"PID (\d+)", str(error))
    if not match:
        return "another process"
    pid = match.group(1)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"process {pid}" + (f" ({command})" if command else "")


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: the DuckDB file (default: ``DUCKDB_PATH``, else data/warehouse.duckdb),
    or with ``BAAC_WAREHOUSE=postgres`` (or ``kind``) the team profile's PostgreSQL database
    ``baac_warehouse`` on the server of the ``BAAC_PG_*`` variables.

    DuckDB lets one process hold a file for writing. When another one does (`make run`
    while a run from the UI is going, `make sql` left open), this waits for it, up to
    ``lock_timeout_seconds`` (``BAAC_WAREHOUSE_LOCK_TIMEOUT``, default 120), then fails
    naming the file and the process that holds it. PostgreSQL has no such lock: readers see
    the last committed data while a load or a dbt build writes.
    """

    path: str | None = None
    lock_timeout_seconds: float | None = None
    kind: str | None = None

    def warehouse_kind(self) -> str:
        return self.kind or warehouse_kind()

    def database_path(self) -> Path:
        return Path(self.path) if self.path else settings.duckdb_path()

    def describe(self) -> str:
        """Where the warehouse is, for messages (never the password)."""
        if self.warehouse_kind() == "postgres":
            pg = postgres_settings()
            return f"postgresql://{pg['user']}@{pg['host']}:{pg['port']}/{POSTGRES_WAREHOUSE_DATABASE}"
        return str(self.database_path())

    def load_raw_table(
        self, table: RawTable, files: list[Path], years: list[int], allow_shrinking: bool, log=None
    ) -> LoadResult:
        """Replace ``years`` of ``raw.<table>`` with the rows of ``files``: the same checks and
        rejects on either warehouse (orchestration/ingestion/load.py, to_postgres.py)."""
        if self.warehouse_kind() == "postgres":
            from orchestration.ingestion.to_postgres import load_raw_table_into_postgres
            from orchestration.postgres_warehouse import connect_postgres

            conn = connect_postgres()
            try:
                return load_raw_table_into_postgres(
                    conn, table, files, years, allow_shrinking=allow_shrinking
                )
            finally:
                conn.close()
        with self.get_connection(log=log) as conn:
            return load_raw_table(conn, table, files, years, allow_shrinking=allow_shrinking)

    @contextmanager
    def get_connection(self, read_only: bool = False, log: Callable[[str], None] | None = None) -> Iterator:
        """A connection to the warehouse (``execute(sql, params)`` as DuckDB's); on DuckDB,
        while another process holds the file, waits (saying once, through ``log``, which
        process holds it) up to the timeout."""
        if self.warehouse_kind() == "postgres":
            from orchestration.postgres_warehouse import PostgresWarehouseConnection, connect_postgres

            raw = connect_postgres()
            raw.set_session(readonly=read_only, autocommit=True)
            conn = PostgresWarehouseConnection(raw)
            try:
                yield conn
            finally:
                conn.close()
            return
        path = self.database_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        timeout = self.lock_timeout_seconds
        if timeout is None:
            timeout = settings.warehouse_lock_timeout_seconds()
        deadline = time.monotonic() + timeout
        said = False
        while True:
            try:
                conn = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                if not said:
                    (log or logging.getLogger("baac.warehouse").warning)(
                        f"Waiting up to {timeout:.0f} s for {path}: it is held by {lock_holder(error)}"
                    )
                    said = True
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(
                        f"{path} is held by another process after waiting {timeout:.0f} s: {error}"
                    ) from error
                time.sleep(0.5)
        try:
            yield conn
        finally:
            conn.close()


class RawSourceResource(dg.ConfigurableResource):
    """Where raw BAAC CSVs come from (defaults: the ``BAAC_*`` environment variables)."""

    kind: str | None = None
    local_dir: str | None = None
    datagouv_manifest: str | None = None
    download_dir: str | None = None

    def source_kind(self) -> str:
        return self.kind or settings.raw_source_kind()

    def files_for(self, table: RawTable, years: list[int], log) -> list[Path]:
        return source_files(
            self.source_kind(),
            table,
            years,
            local_dir=Path(self.local_dir or settings.local_source_dir()),
            datagouv_manifest=Path(self.datagouv_manifest or settings.datagouv_manifest_path()),
            download_dir=Path(self.download_dir or settings.download_cache_dir()),
            progress=log.info,
        )


class MlflowResource(dg.ConfigurableResource):
    """The MLflow tracking store and model registry (default: ``MLFLOW_TRACKING_URI``, else
    an embedded SQLite store under data/mlflow)."""

    tracking_uri: str | None = None
    artifact_root: str | None = None

    def client(self):
        from ml.registry import configure_tracking

        return configure_tracking(
            self.tracking_uri or settings.mlflow_tracking_uri(),
            Path(self.artifact_root) if self.artifact_root else settings.mlflow_artifact_root(),
        )
