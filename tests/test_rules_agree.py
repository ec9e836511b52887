"""Rules stated once per language agree: the dbt macros (SQL) and ml.baac (Python) give the
same accident year, split and "severe" for any accident number and severity."""

from __future__ import annotations

import os
import subprocess

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.baac import SEVERE_CLASSES, accident_year, read_split_rule
from orchestration import settings as project

RULES = (
    "select n, {{ accident_year_from_num_acc('n') }} as accident_year, "
    "{{ split_bucket('n') }} as bucket, {{ split_from_bucket(split_bucket('n')) }} as split "
    "from accidents"
)
SEVERE = "select s, {{ is_severe('s') }} as is_severe from severities"
SPLIT = read_split_rule(project.DBT_PROJECT_DIR)
NUM_ACC = st.integers(min_value=2005 * 10**8, max_value=2018 * 10**8 + 99_999_999)


def compile_inline(sql: str, tmp_path_factory) -> str:
    """The SQL dbt renders from ``sql`` with the project's macros and vars (dbt opens a
    warehouse even to compile: a temporary one, not the user's)."""
    folder = tmp_path_factory.mktemp("compile")
    warehouse, target = folder / "warehouse.duckdb", folder / "target"
    completed = subprocess.run(
        [project.dbt_executable(), "compile", "--profiles-dir", ".", "-q", "--inline", sql]
        + ["--target-path", str(target)],
        cwd=project.DBT_PROJECT_DIR,
        env={**os.environ, "DUCKDB_PATH": str(warehouse)},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


#: Between the queries of one compile: each `dbt compile` starts dbt and parses the project
#: (5 to 12 s), so both rules are rendered by one.
BETWEEN_QUERIES = "-- next query --"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, str]:
    """RULES and SEVERE as dbt renders them."""
    rendered = compile_inline(f"{RULES}\n{BETWEEN_QUERIES}\n{SEVERE}", tmp_path_factory)
    rules, severe = (query.strip() for query in rendered.split(BETWEEN_QUERIES))
    return {"rules": rules, "severe": severe}


@pytest.fixture(scope="module")
def rules_sql(compiled) -> str:
    return compiled["rules"]


def sql_rules(sql: str, numbers: list[int]) -> list[tuple]:
    with duckdb.connect() as conn:
        conn.execute("create table accidents (n bigint)")
        conn.executemany("insert into accidents values (?)", [(n,) for n in numbers])
        return conn.execute(f"{sql} order by n").fetchall()


@settings(max_examples=25, deadline=None)
@given(numbers=st.lists(NUM_ACC, min_size=1, max_size=200, unique=True))
def test_sql_and_python_agree_on_year_bucket_and_split(rules_sql, numbers):
    expected = [(n, accident_year(n), SPLIT.bucket(n), SPLIT.split(n)) for n in sorted(numbers)]
    assert sql_rules(rules_sql, numbers) == expected


def test_split_boundaries_are_the_same_in_both_languages(rules_sql):
    """Accident numbers whose bucket sits on each side of each boundary (59/60, 79/80)."""
    wanted = {0: "train", 59: "train", 60: "validation", 79: "validation", 80: "test", 99: "test"}
    found: dict[int, int] = {}
    n = 201600000000
    while len(found) < len(wanted):
        n += 1
        if SPLIT.bucket(n) in wanted:
            found.setdefault(SPLIT.bucket(n), n)
    rows = {bucket: split for _, _, bucket, split in sql_rules(rules_sql, list(found.values()))}
    assert rows == wanted
    assert {bucket: SPLIT.split(n) for bucket, n in found.items()} == wanted


def test_severe_means_hospitalised_or_killed_in_both_languages(compiled):
    with duckdb.connect() as conn:
        conn.execute("create table severities as select range::integer as s from range(1, 5)")
        rows = conn.execute(compiled["severe"] + " order by s").fetchall()
    assert rows == [(s, s in SEVERE_CLASSES) for s in (1, 2, 3, 4)]
    assert SEVERE_CLASSES == (3, 4)
