"""The team profile's warehouse (PostgreSQL) behind the interface the pipeline uses on DuckDB.

Every place that reads the warehouse does ``conn.execute(sql, params).fetchall()`` (or
``.fetchone()``, ``.df()``, ``.description``) on the connection ``WarehouseResource`` gives it;
this wraps a psycopg2 connection so that the same code reads PostgreSQL. Parameters are
written ``?`` as in DuckDB. ``df()`` brings the rows back with COPY into an in-memory DuckDB,
typed from PostgreSQL's own column types, and takes DuckDB's DataFrame: the dtypes are then
the ones the embedded warehouse gives, so training on either gives the same fingerprint.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from ml.defaults import POSTGRES_WAREHOUSE_DATABASE, postgres_settings

#: PostgreSQL type OIDs -> the DuckDB type DuckDB's own warehouse has for that column.
DUCKDB_TYPES = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    25: "VARCHAR",
    700: "FLOAT",
    701: "DOUBLE",
    1042: "VARCHAR",
    1043: "VARCHAR",
    1082: "DATE",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    # numeric: what PostgreSQL's sum/avg/round give where DuckDB gives a double or hugeint
    1700: "DOUBLE",
}


def connect_postgres(database: str = POSTGRES_WAREHOUSE_DATABASE, **overrides):
    """A psycopg2 connection to the team profile's server (``BAAC_PG_*``, ml/defaults.py)."""
    import psycopg2

    return psycopg2.connect(dbname=database, connect_timeout=10, **{**postgres_settings(), **overrides})


def _placeholders(sql: str) -> str:
    """DuckDB's ``?`` parameters as psycopg2's ``%s`` (a literal ``%`` doubled)."""
    return re.sub(r"\?", "%s", sql.replace("%", "%%"))


class PostgresResult:
    """The answer of one ``execute``: fetchall, fetchone, description, df."""

    def __init__(self, connection: PostgresWarehouseConnection, sql: str, params):
        self._connection = connection
        self._cursor = connection.raw.cursor()
        # The statement with its parameters bound; run when first read (df() runs it by COPY).
        self._query = self._cursor.mogrify(_placeholders(sql), params).decode() if params else sql
        self._executed = False

    def _run(self):
        if not self._executed:
            self._cursor.execute(self._query)
            self._executed = True
        return self._cursor

    @property
    def description(self):
        return self._run().description

    def fetchall(self) -> list[tuple]:
        return self._run().fetchall()

    def fetchone(self) -> tuple | None:
        return self._run().fetchone()

    def df(self) -> pd.DataFrame:
        """The rows as DuckDB would give them: COPY out as CSV, read back by DuckDB typed
        from PostgreSQL's columns (NULL unquoted, the empty string quoted, as COPY writes)."""
        query = self._query.strip().rstrip(";")
        self._cursor.execute(f"select * from ({query}) as answer limit 0")
        columns = {d.name: DUCKDB_TYPES.get(d.type_code, "VARCHAR") for d in self._cursor.description}
        with tempfile.TemporaryDirectory(prefix="baac-read-") as scratch:
            path = Path(scratch) / "rows.csv"
            with path.open("wb") as handle, self._connection.raw.cursor() as cursor:
                cursor.copy_expert(f"copy ({query}) to stdout with (format csv)", handle)
            spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
            with duckdb.connect(":memory:") as local:
                return local.execute(
                    f"select * from read_csv('{path}', header = false, auto_detect = false, "
                    f"columns = {{{spec}}}, quote = '\"', escape = '\"', allow_quoted_nulls = false)"
                ).df()


class PostgresWarehouseConnection:
    """A psycopg2 connection that answers ``execute`` as a DuckDB connection does. Reads run
    in autocommit (each statement sees the latest committed data, never waiting for a writer)."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, params=None) -> PostgresResult:
        """Run ``sql`` (parameters ``?``), as ``duckdb.DuckDBPyConnection.execute``."""
        result = PostgresResult(self, sql, params)
        if not re.match(r"\s*(select|with)\b", sql, re.IGNORECASE):
            result._run()  # a statement is run now, as DuckDB does
        return result

    def close(self) -> None:
        self.raw.close()
