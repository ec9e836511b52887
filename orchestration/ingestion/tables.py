"""The five raw tables: their columns, types and file names. The single source of truth
for the raw layer's schema (the dbt sources document the same columns, and
``tests/test_raw_layout.py`` checks that they do).

Types follow one rule: a numeric *code* or count is ``INTEGER`` (the Kaggle copy writes
``1.0``, the data.gouv files ``01``: both are read as numbers and checked to be whole);
anything whose leading zeros or exact text carry meaning (``com``, ``dep``, ``voie``,
coordinates, road-marker numbers, free text) stays ``VARCHAR`` and is parsed in dbt staging.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.baac import NUM_ACC_SERIAL
from ml.defaults import HOLIDAYS_FILE


@dataclass(frozen=True)
class RawTable:
    """One raw table and where its rows come from."""

    name: str
    #: File name in the Kaggle layout (one file for every year).
    kaggle_file: str
    #: Table name in the data.gouv.fr yearly files (``{stem}_{year}.csv``); None if not published there.
    datagouv_stem: str | None
    #: Column name -> DuckDB type, in file order.
    columns: dict[str, str]
    #: SQL expression giving the accident year of a row (the partition).
    year_expr: str
    #: Columns that identify a row in error messages.
    key_columns: tuple[str, ...]
    description: str

    @property
    def integer_columns(self) -> list[str]:
        return [c for c, t in self.columns.items() if t == "INTEGER"]


def _cols(spec: str) -> dict[str, str]:
    """``"a:INTEGER b:VARCHAR"`` -> ``{"a": "INTEGER", "b": "VARCHAR"}``."""
    return dict(item.split(":") for item in spec.split())


# Num_Acc is the 4-digit year followed by an 8-digit serial (ml.baac states it once for Python).
_YEAR_FROM_NUM_ACC = f"CAST(Num_Acc // {NUM_ACC_SERIAL} AS INTEGER)"

CARACTERISTICS = RawTable(
    name="caracteristics",
    kaggle_file="caracteristics.csv",
    datagouv_stem="caracteristiques",
    columns=_cols(
        "Num_Acc:BIGINT an:INTEGER mois:INTEGER jour:INTEGER hrmn:INTEGER lum:INTEGER "
        "agg:INTEGER int:INTEGER atm:INTEGER col:INTEGER com:VARCHAR adr:VARCHAR gps:VARCHAR "
        "lat:VARCHAR long:VARCHAR dep:VARCHAR"
    ),
    year_expr=_YEAR_FROM_NUM_ACC,
    key_columns=("Num_Acc",),
    description="One row per accident: when, where, light, weather, collision type.",
)

PLACES = RawTable(
    name="places",
    kaggle_file="places.csv",
    datagouv_stem="lieux",
    columns=_cols(
        "Num_Acc:BIGINT catr:INTEGER voie:VARCHAR v1:INTEGER v2:VARCHAR circ:INTEGER "
        "nbv:INTEGER pr:VARCHAR pr1:VARCHAR vosp:INTEGER prof:INTEGER plan:INTEGER "
        "lartpc:INTEGER larrout:INTEGER surf:INTEGER infra:INTEGER situ:INTEGER env1:INTEGER"
    ),
    year_expr=_YEAR_FROM_NUM_ACC,
    key_columns=("Num_Acc",),
    description="One row per accident: the road where it happened.",
)

USERS = RawTable(
    name="users",
    kaggle_file="users.csv",
    datagouv_stem="usagers",
    columns=_cols(
        "Num_Acc:BIGINT place:INTEGER catu:INTEGER grav:INTEGER sexe:INTEGER trajet:INTEGER "
        "secu:INTEGER locp:INTEGER actp:INTEGER etatp:INTEGER an_nais:INTEGER num_veh:VARCHAR"
    ),
    year_expr=_YEAR_FROM_NUM_ACC,
    key_columns=("Num_Acc", "num_veh"),
    description="One row per road user involved, with the target grav (injury severity).",
)

VEHICLES = RawTable(
    name="vehicles",
    kaggle_file="vehicles.csv",
    datagouv_stem="vehicules",
    columns=_cols(
        "Num_Acc:BIGINT senc:INTEGER catv:INTEGER occutc:INTEGER obs:INTEGER obsm:INTEGER "
        "choc:INTEGER manv:INTEGER num_veh:VARCHAR"
    ),
    year_expr=_YEAR_FROM_NUM_ACC,
    key_columns=("Num_Acc", "num_veh"),
    description="One row per vehicle involved.",
)

HOLIDAYS = RawTable(
    name="holidays",
    kaggle_file=HOLIDAYS_FILE,
    datagouv_stem=None,
    columns=_cols("ds:DATE holiday:VARCHAR"),
    year_expr="CAST(year(ds) AS INTEGER)",
    key_columns=("ds",),
    description="French public holidays (Kaggle only; the same file serves every source).",
)

RAW_TABLES: dict[str, RawTable] = {t.name: t for t in (CARACTERISTICS, PLACES, USERS, VEHICLES, HOLIDAYS)}

RAW_SCHEMA = "raw"
REJECTED_ROWS_TABLE = "rejected_rows"
#: Lineage columns added to every raw table.
LINEAGE_COLUMNS = {"accident_year": "INTEGER", "source_file": "VARCHAR", "loaded_at": "TIMESTAMP"}
#: The rows no raw table could take, with why (documented as the dbt source raw.rejected_rows).
REJECTED_ROWS_COLUMNS = {
    "table_name": "VARCHAR",
    "source_file": "VARCHAR",
    "line_number": "BIGINT",  # NULL for a row the reader parsed (named by its key in reason)
    "accident_year": "INTEGER",  # NULL when the line is too broken to tell
    "column_name": "VARCHAR",
    "reason": "VARCHAR",
    "raw_line": "VARCHAR",
    "loaded_at": "TIMESTAMP",
}
