"""Load raw CSV files into the team profile's PostgreSQL warehouse, under the DuckDB load's rules.

The files are parsed, checked and accounted for line by line by the same code as the embedded
warehouse (``load.load_raw_table``), into an in-memory DuckDB: the rows of the loaded years and
their rejects are exactly the ones DuckDB would keep. They then travel to PostgreSQL with COPY
(CSV), in one PostgreSQL transaction that first deletes the years it loads (and their rejects),
so a re-run replaces and never duplicates, and that refuses a delivery shrinking a loaded year
(``load.refuse_shrinking``), changing nothing. Analysts reading meanwhile see the previous rows
until the commit (MVCC).

Column names are PostgreSQL's lower case (``Num_Acc`` is ``num_acc``): unquoted SQL such as
dbt's ``select Num_Acc`` reads the same column in both warehouses. Types are the same names
(INTEGER, BIGINT, VARCHAR, DATE, TIMESTAMP).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.ingestion.load import LoadResult, load_raw_table, refuse_shrinking
from orchestration.ingestion.tables import (
    LINEAGE_COLUMNS,
    RAW_SCHEMA,
    REJECTED_ROWS_COLUMNS,
    REJECTED_ROWS_TABLE,
    RawTable,
)

#: Serialises the raw schema's DDL: raw assets may load in parallel, and two concurrent
#: ``create table if not exists`` of one table collide in PostgreSQL's catalog.
DDL_LOCK_KEY = 0xBAAC


@dataclass
class CopyTiming:
    """How long the COPY into PostgreSQL took, for the load's metadata and the README."""

    rows: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def pg_identifier(name: str) -> str:
    """A raw column's name in PostgreSQL: lower case, quoted (``int`` is a keyword there)."""
    return '"' + name.lower().replace('"', '""') + '"'


def ensure_postgres_raw_schema(cursor, table: RawTable) -> None:
    """Create the raw schema, ``table`` and ``rejected_rows`` in PostgreSQL if they do not exist."""
    cursor.execute("select pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
    cursor.execute(f"create schema if not exists {RAW_SCHEMA}")
    for name, columns in (
        (table.name, {**table.columns, **LINEAGE_COLUMNS}),
        (REJECTED_ROWS_TABLE, REJECTED_ROWS_COLUMNS),
    ):
        ddl = ", ".join(f"{pg_identifier(c)} {t}" for c, t in columns.items())
        cursor.execute(f"create table if not exists {RAW_SCHEMA}.{name} ({ddl})")


def _copy(
    staging: duckdb.DuckDBPyConnection, cursor, relation: str, columns: list[str], where: str, folder: Path
) -> int:
    """COPY the rows of ``relation`` in the staging DuckDB matching ``where`` into the same
    relation in PostgreSQL, through a CSV file (DuckDB writes NULL unquoted and the empty
    string as "", which PostgreSQL's CSV reader reads back as NULL and "")."""
    csv = folder / f"{relation}.csv"
    select = ", ".join('"' + c + '"' for c in columns)
    staging.execute(
        f"copy (select {select} from {relation} where {where}) to '{csv}' (format csv, header false)"
    )
    target = ", ".join(pg_identifier(c) for c in columns)
    with csv.open("rb") as handle:
        cursor.copy_expert(f"copy {relation} ({target}) from stdin with (format csv)", handle)
    return cursor.rowcount


def load_raw_table_into_postgres(
    pg_conn,
    table: RawTable,
    files: list[Path],
    years: list[int],
    allow_shrinking: bool = False,
    timing: CopyTiming | None = None,
) -> LoadResult:
    """Replace the rows of ``years`` in PostgreSQL's ``raw.<table>`` (and their rejects in
    ``raw.rejected_rows``) with those read from ``files``; the same result, rejects and errors
    as ``load_raw_table`` on DuckDB. ``pg_conn`` is a psycopg2 connection; nothing is
    committed when this raises."""
    timing = timing if timing is not None else CopyTiming()
    year_list = ", ".join(str(y) for y in sorted(years))
    with duckdb.connect(":memory:") as staging, tempfile.TemporaryDirectory(prefix="baac-copy-") as scratch:
        # An empty staging warehouse: nothing there to shrink; the guard runs against PostgreSQL.
        result = load_raw_table(staging, table, files, years, allow_shrinking=True)
        try:
            with pg_conn.cursor() as cursor:
                ensure_postgres_raw_schema(cursor, table)
                target = f"{RAW_SCHEMA}.{table.name}"
                # One load of a table at a time (readers are not blocked: they take no row lock).
                cursor.execute(f"lock table {target} in share row exclusive mode")
                cursor.execute(
                    f"select accident_year, count(*) from {target} "
                    f"where accident_year in ({year_list}) group by 1"
                )
                before = dict(cursor.fetchall())
                cursor.execute(f"delete from {target} where accident_year in ({year_list})")
                cursor.execute(
                    f"delete from {RAW_SCHEMA}.{REJECTED_ROWS_TABLE} where table_name = %s "
                    f"and (accident_year in ({year_list}) or accident_year is null)",
                    (table.name,),
                )
                started = time.perf_counter()
                copied = _copy(
                    staging, cursor, target, [*table.columns, *LINEAGE_COLUMNS], "true", Path(scratch)
                )
                copied += _copy(
                    staging,
                    cursor,
                    f"{RAW_SCHEMA}.{REJECTED_ROWS_TABLE}",
                    list(REJECTED_ROWS_COLUMNS),
                    f"table_name = '{table.name}'",
                    Path(scratch),
                )
                timing.rows += copied
                timing.seconds += time.perf_counter() - started
                if not allow_shrinking:
                    refuse_shrinking(table, files, before, result.loaded_by_year)
            pg_conn.commit()
        except BaseException:
            pg_conn.rollback()
            raise
    return result
