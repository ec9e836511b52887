"""Load raw CSV files into the DuckDB warehouse, one set of accident years at a time.

Each load runs in one transaction: it first deletes the rows (and rejected rows) of the
years it loads, so re-loading a partition replaces it and never duplicates it. Parsing is
DuckDB's own CSV reader; Python only builds the statements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.ingestion.csv_files import CsvLayout, inspect_csv
from orchestration.ingestion.tables import (
    LINEAGE_COLUMNS,
    RAW_SCHEMA,
    REJECTED_ROWS_COLUMNS,
    REJECTED_ROWS_TABLE,
    RawTable,
)


@dataclass
class LoadResult:
    """What one load did, for asset metadata and tests."""

    table: str
    years: list[int]
    source_files: list[str]
    loaded_rows: int = 0
    rejected_rows: int = 0
    rows_of_other_years: int = 0
    loaded_by_year: dict[int, int] = field(default_factory=dict)
    rejected_by_reason: Counter = field(default_factory=Counter)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection, table: RawTable) -> None:
    """Create the raw schema, ``table`` and ``rejected_rows`` if they do not exist."""
    conn.execute(f"create schema if not exists {RAW_SCHEMA}")
    columns = {**table.columns, **LINEAGE_COLUMNS}
    ddl = ", ".join(f"{_quote(c)} {t}" for c, t in columns.items())
    conn.execute(f"create table if not exists {RAW_SCHEMA}.{table.name} ({ddl})")
    rejects_ddl = ", ".join(f"{c} {t}" for c, t in REJECTED_ROWS_COLUMNS.items())
    conn.execute(f"create table if not exists {RAW_SCHEMA}.{REJECTED_ROWS_TABLE} ({rejects_ddl})")


def _read_csv_sql(layout: CsvLayout, table: RawTable, rejects: str) -> str:
    """A read_csv call typed from the table spec.

    Integer codes are read as DOUBLE: DuckDB's reader would round ``2.5`` into an INTEGER
    silently, so whole-number checking happens in SQL afterwards. Columns the file has
    beyond the spec are read as text and ignored.
    """
    types = {
        name: ("DOUBLE" if table.columns.get(name) == "INTEGER" else table.columns.get(name, "VARCHAR"))
        for name in layout.header
    }
    columns = "{" + ", ".join(f"{_literal(c)}: {_literal(t)}" for c, t in types.items()) + "}"
    return (
        f"read_csv({_literal(str(layout.path))}, header = true, auto_detect = false, "
        f"columns = {columns}, delim = {_literal(layout.delimiter)}, quote = '\"', "
        f"encoding = {_literal(layout.encoding)}, store_rejects = true, "
        f"rejects_table = {_literal(rejects + '_errors')}, "
        f"rejects_scan = {_literal(rejects + '_scans')}, rejects_limit = 0)"
    )


def load_raw_table(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    files: list[Path],
    years: list[int],
) -> LoadResult:
    """Replace the rows of ``years`` in ``raw.<table>`` with those read from ``files``.

    Rows that cannot be loaded (wrong number of fields, text in a numeric column, a value
    that is not a whole number in an integer column, no accident year) go to
    ``raw.rejected_rows`` with file, line (or row key) and reason.
    Raises RawInputError for a missing file or a header without the expected columns,
    before anything is changed.
    """
    layouts = [inspect_csv(Path(f), table) for f in files]
    result = LoadResult(table=table.name, years=sorted(years), source_files=[str(f) for f in files])
    ensure_raw_schema(conn, table)
    target = f"{RAW_SCHEMA}.{table.name}"
    rejected = f"{RAW_SCHEMA}.{REJECTED_ROWS_TABLE}"
    year_list = ", ".join(str(y) for y in result.years)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)

    conn.execute("begin transaction")
    try:
        conn.execute(f"delete from {target} where accident_year in ({year_list})")
        # Rejects of these years go too, whichever file they came from; so do lines whose
        # year could not be read: the files read now report theirs again.
        conn.execute(
            f"delete from {rejected} where table_name = ? "
            f"and (accident_year in ({year_list}) or accident_year is null)",
            [table.name],
        )
        for layout in layouts:
            _load_file(conn, table, layout, result, loaded_at)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise

    result.loaded_by_year = dict(
        conn.execute(
            f"select accident_year, count(*) from {target} "
            f"where accident_year in ({year_list}) group by 1 order by 1"
        ).fetchall()
    )
    return result


def _load_file(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    layout: CsvLayout,
    result: LoadResult,
    loaded_at: datetime,
) -> None:
    rejects = f"_rejects_{table.name}"
    source = _literal(str(layout.path))
    year_list = ", ".join(str(y) for y in result.years)
    conn.execute(
        f"create or replace temp table _parsed as select * from {_read_csv_sql(layout, table, rejects)}"
    )
    conn.execute("alter table _parsed add column _year INTEGER")
    conn.execute(f"update _parsed set _year = {table.year_expr}")

    # 1. Lines the CSV reader rejected: one row per line, with its first error.
    year_of_line = "try_cast(regexp_extract(csv_line, '^\"?(\\d{4})', 1) as integer)"
    conn.execute(
        f"""
        insert into {RAW_SCHEMA}.{REJECTED_ROWS_TABLE}
        select ?, {source}, line, {year_of_line}, arg_min(column_name, column_idx),
               arg_min(error_type || ': ' || error_message, column_idx), any_value(csv_line), ?
        from {rejects}_errors
        where {year_of_line} in ({year_list}) or {year_of_line} is null
        group by line, csv_line
        """,
        [table.name, loaded_at],
    )
    # 2. Parsed rows that cannot be stored: no accident year, or a value in an integer column
    #    that is not a whole number within INTEGER's range (DuckDB's reader would round 2.5
    #    to 3; nan, inf and 1e12 would fail the cast and with it the whole load).
    integer_columns = [c for c in table.integer_columns if c in layout.header]
    problem = _row_problem_sql(table, integer_columns)
    conn.execute(
        f"""
        insert into {RAW_SCHEMA}.{REJECTED_ROWS_TABLE}
        select ?, {source}, null, _year, problem.column_name, problem.reason, null, ?
        from (select _year, {problem} as problem from _parsed) as checked
        where problem is not null and (_year in ({year_list}) or _year is null)
        """,
        [table.name, loaded_at],
    )

    # 3. Everything else, cast to the table's types.
    storable = f"_year in ({year_list}) and {problem} is null"
    select_list = ", ".join(
        f"cast({_quote(c)} as {t})" if t == "INTEGER" else _quote(c) for c, t in table.columns.items()
    )
    conn.execute(
        f"insert into {RAW_SCHEMA}.{table.name} "
        f"select {select_list}, _year, {source}, ? from _parsed where {storable}",
        [loaded_at],
    )
    result.loaded_rows += conn.execute(f"select count(*) from _parsed where {storable}").fetchone()[0]
    result.rows_of_other_years += conn.execute(
        f"select count(*) from _parsed where _year not in ({year_list})"
    ).fetchone()[0]
    for reason, count in conn.execute(
        f"select split_part(reason, ':', 1), count(*) from {RAW_SCHEMA}.{REJECTED_ROWS_TABLE} "
        f"where table_name = ? and source_file = {source} and loaded_at = ? group by 1",
        [table.name, loaded_at],
    ).fetchall():
        result.rejected_by_reason[reason] += count
        result.rejected_rows += count
    conn.execute(f"drop table if exists {rejects}_errors")
    conn.execute(f"drop table if exists {rejects}_scans")
    conn.execute("drop table _parsed")


def _row_problem_sql(table: RawTable, integer_columns: list[str]) -> str:
    """A struct (column_name, reason) naming the first problem of a parsed row, or NULL.

    DuckDB's reader reports no line number for a row it parsed, so the reason names the
    row by its key columns instead (``Num_Acc``, and ``num_veh`` for users and vehicles).
    """
    key = " || ', ' || ".join(
        f"'{c}=' || coalesce(cast({_quote(c)} as varchar), '')" for c in table.key_columns
    )
    cases = [
        f"when _year is null then {{'column_name': '{table.key_columns[0]}', "
        f"'reason': 'NO YEAR: no accident year can be read from {table.key_columns[0]} "
        f"(row ' || {key} || ')'}}"
    ]
    for column in integer_columns:
        c = _quote(column)
        cases.append(
            f"when {c} is not null and (not isfinite({c}) or {c} <> trunc({c}) "
            f"or {c} not between -2147483648 and 2147483647) "
            f"then {{'column_name': '{column}', 'reason': 'NOT AN INTEGER: column {column} holds ' "
            f"|| cast({c} as varchar) || ', not a whole number in INTEGER range (row ' || {key} || ')'}}"
        )
    return "(case " + " ".join(cases) + " end)"
