"""The warehouse resource waits for another process's lock, then fails naming it."""

import subprocess
import sys
import time

import duckdb
import pytest

from orchestration.resources import WarehouseLockedError, WarehouseResource


def hold_lock(path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
            f"print('held', flush=True); time.sleep({seconds})",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_waits_for_a_lock_to_be_released(tmp_path):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = hold_lock(path, 2)
    started = time.monotonic()
    said = []
    with WarehouseResource(path=str(path), lock_timeout_seconds=30).get_connection(log=said.append) as conn:
        assert conn.execute("select 42").fetchone() == (42,)
    assert time.monotonic() - started >= 1
    holder.wait()
    # Said once, naming the holder's process and command.
    (message,) = said
    assert f"held by process {holder.pid}" in message and "import duckdb" in message


def test_fails_naming_the_file_and_the_holder(tmp_path):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = hold_lock(path, 10)
    try:
        with pytest.raises(
            WarehouseLockedError,
            match=rf"{path} is held by another process after waiting 1 s: .*PID {holder.pid}",
        ):
            with WarehouseResource(path=str(path), lock_timeout_seconds=1).get_connection(read_only=True):
                pass
    finally:
        holder.kill()
