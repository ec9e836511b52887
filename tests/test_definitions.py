"""The Dagster code location loads, and its graph is the one we document."""

import dagster as dg

from orchestration.definitions import defs


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_raw_assets_are_one_per_table_in_the_raw_group():
    graph = defs.resolve_asset_graph()
    raw = {key.to_user_string() for key in graph.get_all_asset_keys() if key.path[0] == "raw"}
    assert raw == {"raw/caracteristics", "raw/places", "raw/users", "raw/vehicles", "raw/holidays"}
    for key in raw:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == "raw"
        assert node.partitions_def.get_partition_keys()[0] == "2005"


def test_code_location_loads_as_dagster_dev_starts_it(tmp_path):
    """`dagster dev` re-parses the dbt project with dbt found on PATH, and its code server may
    start without .venv/bin on PATH: loading must still work."""
    import os
    import subprocess
    import sys

    from orchestration import settings

    env = {**os.environ, "DAGSTER_IS_DEV_CLI": "1", "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    completed = subprocess.run(
        [sys.executable, "-c", "from orchestration.definitions import defs; print(len(defs.assets))"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
