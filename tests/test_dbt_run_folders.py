"""dbt's target folders across pipeline runs: the parse kept per profile
(orchestration/dbt_parse_cache.py), and old run folders removed. That a run really skips the
parse is checked where runs repeat on one warehouse: tests/test_crashes.py."""

from __future__ import annotations

import os
import re
import time

from orchestration import dbt_parse_cache, settings
from orchestration.assets.dbt import prune_run_folders


def test_the_key_covers_every_variable_the_profile_reads():
    profile = (settings.DBT_PROJECT_DIR / "profiles.yml").read_text()
    read = set(re.findall(r"env_var\(\s*'([A-Z_]+)'", profile))
    assert read == set(dbt_parse_cache.PROFILE_ENV_VARS)


def test_another_warehouse_or_setting_is_another_key_and_the_password_is_not_in_it():
    base = {"DUCKDB_PATH": "/a/warehouse.duckdb", "BAAC_PG_PASSWORD": "s3cret-password"}
    key = dbt_parse_cache.profile_key(base)
    assert key == dbt_parse_cache.profile_key(dict(base))
    assert key != dbt_parse_cache.profile_key({**base, "DUCKDB_PATH": "/b/warehouse.duckdb"})
    assert key != dbt_parse_cache.profile_key({**base, "BAAC_DBT_MEMORY_LIMIT": "3GB"})
    assert key == dbt_parse_cache.profile_key({**base, "MLFLOW_TRACKING_URI": "sqlite:///x.db"})
    assert "s3cret" not in key and len(key) == 16


def test_a_kept_parse_seeds_the_next_run_of_the_same_profile_only(tmp_path):
    cache, env = tmp_path / "cache", {"DUCKDB_PATH": "/a/warehouse.duckdb"}
    first, second, other = tmp_path / "run-1", tmp_path / "run-2", tmp_path / "run-3"
    assert not dbt_parse_cache.seed_target(first, cache, env)  # nothing kept yet
    assert not dbt_parse_cache.keep_parse(first, cache, env)  # dbt wrote nothing (it failed early)
    first.mkdir()
    (first / dbt_parse_cache.PARTIAL_PARSE_FILE).write_bytes(b"parse of run 1")
    assert dbt_parse_cache.keep_parse(first, cache, env)
    assert dbt_parse_cache.seed_target(second, cache, env)
    assert (second / dbt_parse_cache.PARTIAL_PARSE_FILE).read_bytes() == b"parse of run 1"
    assert not dbt_parse_cache.seed_target(other, cache, {"DUCKDB_PATH": "/b/warehouse.duckdb"})
    assert [p.suffix for p in cache.iterdir()] == [".msgpack"]  # no temporary file left


def test_only_the_parses_used_last_are_kept_and_abandoned_temporary_files_go(tmp_path):
    """Each new warehouse path (each test's) adds a parse: the cache keeps those used last
    (seeding a run counts as a use) and the temporary file of a process killed while it
    kept one, once it is an hour old."""
    cache, run = tmp_path / "cache", tmp_path / "run"
    profiles = [{"DUCKDB_PATH": f"/{name}/warehouse.duckdb"} for name in "abc"]
    run.mkdir()
    (run / dbt_parse_cache.PARTIAL_PARSE_FILE).write_bytes(b"a parse")
    for age, profile in enumerate(profiles):  # a is the oldest
        assert dbt_parse_cache.keep_parse(run, cache, profile)
        os.utime(dbt_parse_cache.cache_file(cache, profile), (1_000_000 + age, 1_000_000 + age))
    assert dbt_parse_cache.seed_target(tmp_path / "next-run", cache, profiles[0])  # a: used last
    abandoned, being_written = cache / "x.msgpack.1.tmp", cache / "y.msgpack.2.tmp"
    for path in (abandoned, being_written):
        path.write_bytes(b"half a parse")
    now = time.time()
    os.utime(abandoned, (now - 2 * 3600, now - 2 * 3600))
    removed = dbt_parse_cache.prune(cache, keep=2, now=now)
    assert sorted(removed) == sorted([abandoned, dbt_parse_cache.cache_file(cache, profiles[1])])
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [dbt_parse_cache.cache_file(cache, profiles[i]).name for i in (0, 2)] + [being_written.name]
    )


def test_keeping_a_parse_bounds_the_cache(tmp_path):
    cache, run = tmp_path / "cache", tmp_path / "run"
    run.mkdir()
    (run / dbt_parse_cache.PARTIAL_PARSE_FILE).write_bytes(b"a parse")
    for n in range(dbt_parse_cache.PARSES_KEPT + 1):
        assert dbt_parse_cache.keep_parse(run, cache, {"DUCKDB_PATH": f"/{n}/warehouse.duckdb"})
    assert len(list(cache.iterdir())) == dbt_parse_cache.PARSES_KEPT


def test_only_the_newest_run_folders_of_the_step_are_kept(tmp_path):
    for age, name in enumerate(["baac_dbt_models-a", "baac_dbt_models-b", "baac_dbt_models-c"]):
        folder = tmp_path / name
        (folder / "compiled").mkdir(parents=True)
        os.utime(folder, (1_000_000 + age, 1_000_000 + age))  # c is the newest
    (tmp_path / "partial_parse").mkdir()
    (tmp_path / "manifest.json").write_text("{}")
    removed = prune_run_folders(tmp_path, "baac_dbt_models", keep=2)
    assert [p.name for p in removed] == ["baac_dbt_models-a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "baac_dbt_models-b",
        "baac_dbt_models-c",
        "manifest.json",
        "partial_parse",
    ]
