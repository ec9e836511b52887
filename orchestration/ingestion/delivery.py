"""Deliveries in the landing folder: what they hold, their fingerprint, and whether they load.

A delivery is a folder directly under the landing folder holding a year's (or several
years') files in the Kaggle layout (``caracteristics.csv``...) or data.gouv.fr's
(``caracteristiques_2016.csv``...). Folders whose name starts with ``.`` or ``_`` are
ignored, so a delivery can be copied under such a name and renamed when complete.

A delivery is checked before anything of it is loaded, by loading it whole into an
in-memory DuckDB with the same loader as the raw assets (orchestration/ingestion/load.py):
a missing file, a header without the expected columns, or lines the loader would reject
refuse the whole delivery, so that it is never half-loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration import settings
from orchestration.ingestion.csv_files import RawInputError
from orchestration.ingestion.load import load_raw_table
from orchestration.ingestion.sources import folder_files
from orchestration.ingestion.tables import RAW_SCHEMA, RAW_TABLES, REJECTED_ROWS_TABLE

_CHUNK = 1 << 20


def delivery_folders(landing: Path) -> list[Path]:
    """The delivery folders of the landing folder, by name (none when it does not exist)."""
    if not landing.is_dir():
        return []
    return sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def stat_key(folder: Path) -> str:
    """Names, sizes and modification times of the delivery's files: cheap to compute, and
    unchanged files need not be read again to know their fingerprint."""
    parts = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in _files(folder)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def fingerprint(folder: Path) -> str:
    """SHA-256 over the names and bytes of the delivery's files: the same content, touched or
    copied again, has the same fingerprint."""
    digest = hashlib.sha256()
    for path in _files(folder):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class DeliveryCheck:
    """What a dry-run load of a delivery found."""

    folder: Path
    #: Accident years the delivery holds (from its accidents file).
    years: list[int] = field(default_factory=list)
    #: Rows each table would load.
    rows: dict[str, int] = field(default_factory=dict)
    #: Why the delivery cannot be loaded; empty when it can.
    problems: list[str] = field(default_factory=list)

    @property
    def loadable(self) -> bool:
        return not self.problems


def check_delivery(folder: Path, max_rejected_lines: int | None = None) -> DeliveryCheck:
    """Load every table of the delivery into an in-memory DuckDB and report what would load,
    or every reason it cannot (naming the file, line, column and reason of the first
    rejected lines)."""
    if max_rejected_lines is None:
        max_rejected_lines = settings.landing_max_rejected_lines()
    check = DeliveryCheck(folder)
    years = [int(y) for y in settings.ACCIDENT_YEARS]
    with duckdb.connect(":memory:") as conn:
        for table in RAW_TABLES.values():
            try:
                result = load_raw_table(conn, table, folder_files(folder, table, years), years)
            except (RawInputError, duckdb.Error) as error:
                check.problems.append(str(error))
                continue
            check.rows[table.name] = result.loaded_rows
            if table.name == "caracteristics":
                check.years = sorted(y for y, n in result.loaded_by_year.items() if n)
        rejected = rejected_lines(conn) if check.rows else []
    if len(rejected) > max_rejected_lines:
        shown = "; ".join(rejected[:5])
        check.problems.append(
            f"{len(rejected)} line(s) would be rejected (at most {max_rejected_lines} allowed, "
            f"BAAC_LANDING_MAX_REJECTED): {shown}"
        )
    if check.loadable and not check.years:
        check.problems.append(f"no accident of {years[0]}-{years[-1]} in {folder}")
    return check


def rejected_lines(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Each line the dry run rejected, as "file line N: column: reason"."""
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [RAW_SCHEMA, REJECTED_ROWS_TABLE],
    ).fetchone()[0]
    if not exists:
        return []
    rows = conn.execute(
        f"select source_file, line_number, column_name, reason from {RAW_SCHEMA}.{REJECTED_ROWS_TABLE} "
        "order by source_file, line_number nulls last"
    ).fetchall()
    return [
        f"{Path(file).name} line {line if line is not None else '?'}: {column or '-'}: {reason}"
        for file, line, column, reason in rows
    ]


def year_ranges(years: list[int]) -> list[list[str]]:
    """Contiguous runs of years, as partition keys (a run covers one range of partitions).

    >>> year_ranges([2014, 2015, 2017])
    [['2014', '2015'], ['2017']]
    """
    ranges: list[list[str]] = []
    for year in sorted(years):
        if ranges and int(ranges[-1][-1]) == year - 1:
            ranges[-1].append(str(year))
        else:
            ranges.append([str(year)])
    return ranges
