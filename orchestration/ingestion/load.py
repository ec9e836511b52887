"""Load raw CSV files into the DuckDB warehouse, one set of accident years at a time.

Each load runs in one transaction: it first deletes the rows (and rejected rows) of the
years it loads, so re-loading a partition replaces it and never duplicates it. Parsing is
DuckDB's own CSV reader. Every physical line of a file is accounted for: loaded, rejected
with its reason, or of a year not loaded now. When DuckDB cannot account for a file line by
line (an unbalanced quote, bytes its latin-1 reader refuses, a reject longer than it keeps),
the file goes through ``normalise`` first and is read again from a line-numbered copy.
A delivery that would shrink a loaded year to less than half its rows is refused unless
allowed.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.ingestion.csv_files import CsvLayout, RawInputError, inspect_csv
from orchestration.ingestion.normalise import LINE_COLUMN, RejectedLine, line_texts, normalise
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
    rejected_by_year: dict[int, int] = field(default_factory=dict)
    #: Per file: physical data lines, and how they were accounted for.
    files: list[dict] = field(default_factory=list)


#: A year may not lose more than this share of its rows in one delivery unless allowed.
MAX_SHRINK = 0.5
#: DuckDB keeps at most this many characters of a rejected line.
DUCKDB_REJECT_TEXT_LIMIT = 10_000


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
        name: (
            "BIGINT"
            if name == LINE_COLUMN
            else "DOUBLE"
            if table.columns.get(name) == "INTEGER"
            else table.columns.get(name, "VARCHAR")
        )
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
    allow_shrinking: bool = False,
) -> LoadResult:
    """Replace the rows of ``years`` in ``raw.<table>`` with those read from ``files``.

    Rows that cannot be loaded (wrong number of fields, text in a numeric column, a value
    that is not a whole number in an integer column, no accident year, an undecodable line,
    an unbalanced quote) go to ``raw.rejected_rows`` with file, line (or row key) and reason.
    Raises RawInputError, changing nothing, for a missing file, a header without the expected
    columns, lines that cannot be accounted for, or a year that would keep less than half its
    rows (unless ``allow_shrinking``).
    """
    layouts = [inspect_csv(Path(f), table) for f in files]
    result = LoadResult(table=table.name, years=sorted(years), source_files=[str(f) for f in files])
    ensure_raw_schema(conn, table)
    target = f"{RAW_SCHEMA}.{table.name}"
    rejected = f"{RAW_SCHEMA}.{REJECTED_ROWS_TABLE}"
    year_list = ", ".join(str(y) for y in result.years)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    rows_by_year = (
        f"select accident_year, count(*) from {target} where accident_year in ({year_list}) group by 1"
    )

    with tempfile.TemporaryDirectory(prefix="baac-normalised-") as scratch:
        # Read and check every file before the transaction: a read that fails would abort it.
        read = [_read_file(conn, table, layout, index, Path(scratch)) for index, layout in enumerate(layouts)]
    conn.execute("begin transaction")
    try:
        before = dict(conn.execute(rows_by_year).fetchall())
        conn.execute(f"delete from {target} where accident_year in ({year_list})")
        # Rejects of these years go too, whichever file they came from; so do lines whose
        # year could not be read: the files read now report theirs again.
        conn.execute(
            f"delete from {rejected} where table_name = ? "
            f"and (accident_year in ({year_list}) or accident_year is null)",
            [table.name],
        )
        for file in read:
            _store_file(conn, table, file, result, loaded_at)
        result.loaded_by_year = dict(sorted(conn.execute(rows_by_year).fetchall()))
        result.rejected_by_year = dict(
            conn.execute(
                f"select accident_year, count(*) from {rejected} where table_name = ? and loaded_at = ? "
                f"and accident_year is not null group by 1",
                [table.name, loaded_at],
            ).fetchall()
        )
        if not allow_shrinking:
            refuse_shrinking(table, files, before, result.loaded_by_year)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        for file in read:
            file.drop(conn)
    return result


def refuse_shrinking(
    table: RawTable, files: list[Path], before: dict[int, int], after: dict[int, int]
) -> None:
    """A delivery must not erase a loaded year by accident: an empty or truncated file
    (``before`` and ``after``: rows per year; also the rule of the PostgreSQL load)."""
    shrunk = {
        year: (rows, after.get(year, 0))
        for year, rows in before.items()
        if after.get(year, 0) < MAX_SHRINK * rows
    }
    if shrunk:
        detail = "; ".join(
            f"{year}: {old:,} rows loaded, {new:,} in the new files"
            for year, (old, new) in sorted(shrunk.items())
        )
        raise RawInputError(
            f"{table.name}: {', '.join(map(str, files))} would shrink loaded years to less than half "
            f"({detail}). "
            "Nothing was changed. If this delivery is right, load it with allow_shrinking "
            "(the raw asset's config)."
        )


@dataclass
class _ReadFile:
    """A file read into a temp table, ready to be stored."""

    original: CsvLayout
    read_from: CsvLayout  # the original, or its line-numbered copy
    parsed: str  # the temp table of its rows
    rejects: str  # the prefix of DuckDB's rejects tables
    pre_rejected: list[RejectedLine]

    def drop(self, conn: duckdb.DuckDBPyConnection) -> None:
        for name in (self.parsed, f"{self.rejects}_errors", f"{self.rejects}_scans"):
            conn.execute(f"drop table if exists {name}")


def _read_file(
    conn: duckdb.DuckDBPyConnection, table: RawTable, layout: CsvLayout, index: int, scratch: Path
) -> _ReadFile:
    file = _ReadFile(layout, layout, f"_parsed_{table.name}_{index}", f"_rejects_{table.name}_{index}", [])
    parsed = _parse(conn, table, layout, file.parsed, file.rejects)
    if parsed is None or not parsed.accounts_for(layout):
        # DuckDB could not account for every line: read a line-numbered copy instead.
        normalised = normalise(layout, scratch / f"{table.name}-{index}.csv")
        file.read_from, file.pre_rejected = normalised.copy, normalised.rejected
        if _parse(conn, table, file.read_from, file.parsed, file.rejects) is None:
            raise RawInputError(f"{table.name}: {layout.path} cannot be read even line by line")
    return file


def _store_file(
    conn: duckdb.DuckDBPyConnection, table: RawTable, file: _ReadFile, result: LoadResult, loaded_at: datetime
) -> None:
    account = _store(conn, table, file, result, loaded_at)
    if account["accounted_lines"] != file.original.data_lines:
        first = _first_unaccounted_line(conn, file)
        raise RawInputError(
            f"{table.name}: {file.original.path} has {file.original.data_lines:,} data lines but only "
            f"{account['accounted_lines']:,} are loaded, rejected or of other years; "
            f"the first unaccounted line is {first}"
        )
    result.files.append(account)


@dataclass(frozen=True)
class _Parsed:
    rows: int
    error_lines: int
    longest_reject: int

    def accounts_for(self, layout: CsvLayout) -> bool:
        """Every physical line is a parsed row or one reject of its own, and no reject text
        was cut short."""
        return (
            self.rows + self.error_lines == layout.data_lines
            and self.longest_reject < DUCKDB_REJECT_TEXT_LIMIT
        )


def _parse(
    conn: duckdb.DuckDBPyConnection, table: RawTable, layout: CsvLayout, parsed_table: str, rejects: str
) -> _Parsed | None:
    """Read ``layout`` into the temp table ``parsed_table`` (with ``_year`` and ``_problem``);
    None when DuckDB's reader refuses the file as a whole (an encoding it cannot read)."""
    integer_columns = [c for c in table.integer_columns if c in layout.header]
    problem = _row_problem_sql(table, integer_columns)
    conn.execute(f"drop table if exists {rejects}_errors")  # DuckDB appends to them otherwise
    conn.execute(f"drop table if exists {rejects}_scans")
    try:
        conn.execute(
            f"create or replace temp table {parsed_table} as "
            f"select *, {table.year_expr} as _year, {problem} as _problem "
            f"from {_read_csv_sql(layout, table, rejects)}"
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException):
        return None
    rows, error_lines, longest = conn.execute(
        f"select (select count(*) from {parsed_table}), count(distinct line), "
        f"coalesce(max(length(csv_line)), 0) "
        f"from {rejects}_errors"
    ).fetchone()
    return _Parsed(rows, error_lines, longest)


def _store(
    conn: duckdb.DuckDBPyConnection, table: RawTable, file: _ReadFile, result: LoadResult, loaded_at: datetime
) -> dict:
    """Insert the parsed rows of the loaded years and every reject; return the file's account."""
    original, read_from, rejects, pre_rejected = (
        file.original,
        file.read_from,
        file.rejects,
        file.pre_rejected,
    )
    source = _literal(str(original.path))
    year_list = ", ".join(str(y) for y in result.years)
    rejected_table = f"{RAW_SCHEMA}.{REJECTED_ROWS_TABLE}"
    numbered = LINE_COLUMN in read_from.header

    # 1. Lines that could not be rows at all (the careful path only): each with its number.
    if pre_rejected:
        conn.executemany(
            f"insert into {rejected_table} values (?, {source}, ?, "
            f"try_cast(regexp_extract(?, '^\"?(\\d{{4}})', 1) as integer), null, ?, ?, ?)",
            [[table.name, r.line_number, r.text, r.reason, r.text, loaded_at] for r in pre_rejected],
        )
    # 2. Lines the CSV reader rejected: one row per line, with its first error. In a numbered
    #    copy the original line number is the line's first field, and its text is read whole.
    line = (
        f"try_cast(split_part(csv_line, {_literal(read_from.delimiter)}, 1) as bigint)"
        if numbered
        else "line"
    )
    text = (
        f"substr(csv_line, length(split_part(csv_line, {_literal(read_from.delimiter)}, 1)) + 2)"
        if numbered
        else "csv_line"
    )
    year_of_line = f"try_cast(regexp_extract({text}, '^\"?(\\d{{4}})', 1) as integer)"
    conn.execute(
        f"""
        insert into {rejected_table}
        select ?, {source}, {line}, {year_of_line}, arg_min(column_name, column_idx),
               arg_min(error_type || ': ' || error_message, column_idx), any_value({text}), ?
        from {rejects}_errors
        where {year_of_line} in ({year_list}) or {year_of_line} is null
        group by line, csv_line
        """,
        [table.name, loaded_at],
    )
    if numbered:
        _restore_whole_texts(conn, original, loaded_at, table)
    # 3. Parsed rows that cannot be stored: no accident year, or a value in an integer column
    #    that is not a whole number within INTEGER's range (DuckDB's reader would round 2.5
    #    to 3; nan, inf and 1e12 would fail the cast and with it the whole load).
    conn.execute(
        f"""
        insert into {rejected_table}
        select ?, {source}, {LINE_COLUMN if numbered else "null"}, _year, _problem.column_name,
               _problem.reason, null, ?
        from {file.parsed}
        where _problem is not null and (_year in ({year_list}) or _year is null)
        """,
        [table.name, loaded_at],
    )
    # 4. Everything else, cast to the table's types.
    select_list = ", ".join(
        f"cast({_quote(c)} as {t})" if t == "INTEGER" else _quote(c) for c, t in table.columns.items()
    )
    (loaded,) = conn.execute(
        f"insert into {RAW_SCHEMA}.{table.name} "
        f"select {select_list}, _year, {source}, ? from {file.parsed} "
        f"where _year in ({year_list}) and _problem is null",
        [loaded_at],
    ).fetchone()
    parsed, other_years, error_lines = conn.execute(
        f"select count(*), count(*) filter (where _year not in ({year_list})), "
        f"(select count(distinct line) from {rejects}_errors) from {file.parsed}"
    ).fetchone()
    rejected_here = 0
    for reason, count in conn.execute(
        f"select split_part(reason, ':', 1), count(*) from {rejected_table} "
        f"where table_name = ? and source_file = {source} and loaded_at = ? group by 1",
        [table.name, loaded_at],
    ).fetchall():
        result.rejected_by_reason[reason] += count
        rejected_here += count
    result.loaded_rows += loaded
    result.rejected_rows += rejected_here
    result.rows_of_other_years += other_years
    return {
        "file": str(original.path),
        "data_lines": original.data_lines,
        "loaded": loaded,
        "rejected": rejected_here,
        "other_years": other_years,
        "careful_path": numbered,
        # Rejected lines of other years are not stored: they are counted as other years.
        "accounted_lines": parsed + error_lines + len(pre_rejected),
    }


def _restore_whole_texts(
    conn: duckdb.DuckDBPyConnection, original: CsvLayout, loaded_at: datetime, table: RawTable
) -> None:
    """DuckDB keeps 10,000 characters of a rejected line: put back the whole line."""
    rejected_table = f"{RAW_SCHEMA}.{REJECTED_ROWS_TABLE}"
    cut = [
        n
        for (n,) in conn.execute(
            f"select line_number from {rejected_table} where table_name = ? and source_file = ? "
            f"and loaded_at = ? and length(raw_line) >= {DUCKDB_REJECT_TEXT_LIMIT - 1}",
            [table.name, str(original.path), loaded_at],
        ).fetchall()
    ]
    for number, text in line_texts(original.path, cut).items():
        conn.execute(
            f"update {rejected_table} set raw_line = ? where table_name = ? and source_file = ? "
            f"and loaded_at = ? and line_number = ?",
            [text, table.name, str(original.path), loaded_at, number],
        )


def _first_unaccounted_line(conn: duckdb.DuckDBPyConnection, file: _ReadFile) -> int | None:
    """The smallest line number (2 = the first after the header) no row or reject stands for."""
    delimiter = _literal(file.read_from.delimiter)
    seen = {r.line_number for r in file.pre_rejected}
    seen |= {n for (n,) in conn.execute(f"select {LINE_COLUMN} from {file.parsed}").fetchall()}
    seen |= {
        n
        for (n,) in conn.execute(
            f"select try_cast(split_part(csv_line, {delimiter}, 1) as bigint) from {file.rejects}_errors"
        ).fetchall()
    }
    return next((n for n in range(2, file.original.data_lines + 2) if n not in seen), None)


def _row_problem_sql(table: RawTable, integer_columns: list[str]) -> str:
    """A struct (column_name, reason) naming the first problem of a parsed row, or NULL.

    DuckDB's reader reports no line number for a row it parsed, so the reason names the
    row by its key columns (``Num_Acc``, and ``num_veh`` for users and vehicles); a row read
    from a line-numbered copy also has its line in ``line_number``.
    """
    key = " || ', ' || ".join(
        f"'{c}=' || coalesce(cast({_quote(c)} as varchar), '')" for c in table.key_columns
    )
    cases = [
        f"when {table.year_expr} is null then {{'column_name': '{table.key_columns[0]}', "
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
