"""Raw ingestion assets: one per BAAC table, partitioned by accident year."""

import warnings

import dagster as dg

from orchestration import settings
from orchestration.ingestion.tables import (
    LINEAGE_COLUMNS,
    RAW_SCHEMA,
    RAW_TABLES,
    REJECTED_ROWS_TABLE,
    RawTable,
)
from orchestration.resources import RawSourceResource, WarehouseResource

accident_years = dg.StaticPartitionsDefinition(settings.ACCIDENT_YEARS)


class RawLoadConfig(dg.Config):
    """Options of a raw load (Launchpad)."""

    #: A delivery that leaves a loaded year with less than half its rows (an empty or cut
    #: file) is refused; set this to replace the year anyway.
    allow_shrinking: bool = False


def build_raw_asset(table: RawTable) -> dg.AssetsDefinition:
    """An asset loading ``raw.<table>``; a backfill of many years runs as one step that
    reads each file once (the Kaggle files hold every year)."""

    @dg.asset(
        key=[RAW_SCHEMA, table.name],
        group_name="raw",
        description=f"{table.description} Loaded as-is from the source CSV into the warehouse.",
        partitions_def=accident_years,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name, kind) for name, kind in {**table.columns, **LINEAGE_COLUMNS}.items()
                ]
            ),
            "dagster/table_name": f"{RAW_SCHEMA}.{table.name}",
        },
        kinds={"duckdb", "csv"},
        check_specs=[
            dg.AssetCheckSpec(
                "no_rejected_rows",
                asset=[RAW_SCHEMA, table.name],
                description=(
                    f"Every line of the source file loaded (rejects in {RAW_SCHEMA}.{REJECTED_ROWS_TABLE})."
                ),
            )
        ],
    )
    def _raw_asset(
        context: dg.AssetExecutionContext,
        config: RawLoadConfig,
        warehouse: WarehouseResource,
        raw_source: RawSourceResource,
    ):
        years = [int(key) for key in context.partition_keys]
        files = raw_source.files_for(table, years, context.log)
        context.log.info(f"Loading {table.name} for {years[0]}-{years[-1]} from {files}")
        result = warehouse.load_raw_table(
            table, files, years, allow_shrinking=config.allow_shrinking, log=context.log.warning
        )
        context.log.info(
            f"{table.name}: {result.loaded_rows:,} rows loaded, {result.rejected_rows:,} rejected"
        )
        # The run's own materialization (one per year of the run, with the run's totals), then
        # one per year with that year's rows: the latest of each year is its own.
        yield dg.MaterializeResult(
            metadata={
                "run_loaded_rows_by_year": dg.MetadataValue.json(
                    {str(year): result.loaded_by_year.get(year, 0) for year in years}
                ),
                "table": f"{RAW_SCHEMA}.{table.name}",
            }
        )
        # The check before the per-year materializations: a check result reads the asset's
        # latest materialization, which must be the step's own (a per-year one carries no
        # data version, and Dagster warned of a mismatch on every run).
        yield dg.AssetCheckResult(
            check_name="no_rejected_rows",
            passed=result.rejected_rows == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rejected_rows": result.rejected_rows,
                "by_reason": dg.MetadataValue.json(dict(result.rejected_by_reason)),
                # Every physical line of each file: loaded, rejected, or of a year not loaded now.
                "lines_accounted": dg.MetadataValue.json(result.files),
            },
        )
        with warehouse.get_connection(read_only=True) as conn:
            previews = {year: preview(conn, table, year) for year in years if result.loaded_by_year.get(year)}
        for year in years:
            loaded = result.loaded_by_year.get(year, 0)
            yield dg.AssetMaterialization(
                asset_key=context.asset_key,
                partition=str(year),
                metadata={
                    "dagster/row_count": loaded,
                    "loaded_rows": loaded,
                    "rejected_rows": result.rejected_by_year.get(year, 0),
                    "data": "loaded" if loaded else f"the source files hold no {table.name} row of {year}",
                    "source": raw_source.source_kind(),
                    "source_files": dg.MetadataValue.json(result.source_files),
                    **({"preview": previews[year]} if year in previews else {}),
                },
            )

    return _raw_asset


def preview(conn, table: RawTable, year: int, rows: int = 5) -> dg.MetadataValue:
    """The first rows of a year, as a table in the asset's metadata."""
    columns = list(table.columns)
    # Lower case: PostgreSQL's raw columns are (to_postgres.py); DuckDB matches either case.
    casts = ", ".join(f'cast("{column.lower()}" as varchar)' for column in columns)
    records = conn.execute(
        f"select {casts} from {RAW_SCHEMA}.{table.name} where accident_year = ? limit {rows}", [year]
    ).fetchall()
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(columns, values, strict=True))) for values in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns]),
    )


# The single-run backfill policy is marked beta; it is what lets a backfill read each file once.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    raw_assets = [build_raw_asset(table) for table in RAW_TABLES.values()]

#: raw.rejected_rows, written by every raw asset: in the graph between them and dbt's
#: stg_rejected_rows (the dbt source maps to this key).
rejected_rows = dg.AssetSpec(
    key=[RAW_SCHEMA, REJECTED_ROWS_TABLE],
    group_name="raw",
    deps=[asset.key for asset in raw_assets],
    description="Every line the raw assets could not load, with file, line, year, column and reason.",
    kinds={"duckdb"},
)
