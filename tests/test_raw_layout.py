"""The raw layout is stated in Python (orchestration/ingestion/tables.py) and documented as
dbt sources (dbt_project/models/staging/__sources.yml): the two must agree."""

import yaml

from orchestration import settings
from orchestration.ingestion.tables import (
    LINEAGE_COLUMNS,
    RAW_SCHEMA,
    RAW_TABLES,
    REJECTED_ROWS_COLUMNS,
    REJECTED_ROWS_TABLE,
)


def sources() -> dict[str, list[str]]:
    document = yaml.safe_load((settings.DBT_PROJECT_DIR / "models" / "staging" / "__sources.yml").read_text())
    (raw,) = [s for s in document["sources"] if s["name"] == RAW_SCHEMA]
    assert raw["schema"] == RAW_SCHEMA
    return {table["name"]: [c["name"] for c in table["columns"]] for table in raw["tables"]}


def test_every_raw_table_is_a_dbt_source_with_the_same_columns_in_order():
    documented = sources()
    assert set(documented) == {*RAW_TABLES, REJECTED_ROWS_TABLE}
    for name, table in RAW_TABLES.items():
        assert documented[name] == [*table.columns, *LINEAGE_COLUMNS], name


def test_rejected_rows_are_documented_column_for_column():
    assert sources()[REJECTED_ROWS_TABLE] == list(REJECTED_ROWS_COLUMNS)


def test_each_raw_source_points_at_its_dagster_asset():
    document = yaml.safe_load((settings.DBT_PROJECT_DIR / "models" / "staging" / "__sources.yml").read_text())
    (raw,) = document["sources"]
    for table in raw["tables"]:
        if table["name"] in RAW_TABLES:
            assert table["meta"]["dagster"]["asset_key"] == [RAW_SCHEMA, table["name"]]
