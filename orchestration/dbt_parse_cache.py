"""dbt's partial parsing across pipeline runs: one parse per warehouse, not one per run.

dagster-dbt gives each `dbt build` a fresh target folder and seeds it with the project's
``target/partial_parse.msgpack``, which ``make manifest`` wrote with the profile's default
values. dbt re-parses the whole project whenever the profile renders differently (the
warehouse path, its memory limit, the drift output folder: all environment variables), so
a run on another warehouse than the default, and every run of the tests, spent about 7 of
its 25 dbt seconds parsing (sample, "Unable to do partial parsing because profile has
changed").

Here each run's folder is seeded instead from the parse that dbt last wrote for the same
profile values, and that parse is kept after the run. dbt still checks every file's hash
and the profile itself, so a stale or foreign cache entry costs a full parse, never a wrong
manifest. Only the parses of the most recently used profiles are kept: every new warehouse
path adds one (about 1.3 MB on this project), and each `make test` made about five that no
later run reads (32 files, 40 MB, in one checkout). The cache is best effort: keeping its
size can never fail a build that succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

#: The file dbt writes its parse to, in its target folder.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
#: Every environment variable ``profiles.yml`` reads (tests/test_dbt_run_folders.py checks the
#: list against the file): the values dbt's profile check compares.
PROFILE_ENV_VARS = (
    "BAAC_WAREHOUSE",
    "DUCKDB_PATH",
    "BAAC_DBT_MEMORY_LIMIT",
    "BAAC_MONITORING_DIR",
    "BAAC_PG_HOST",
    "BAAC_PG_PORT",
    "BAAC_PG_USER",
    "BAAC_PG_PASSWORD",
)
#: Parses kept, those of the profiles used last (a profile's own, once evicted, costs one
#: full parse when it comes back).
PARSES_KEPT = 10
#: A temporary file older than this was left by a process killed while it kept a parse.
ABANDONED_AFTER_SECONDS = 3600


def profile_key(environ: Mapping[str, str]) -> str:
    """A name for the profile these variables render (a hash: the password stays out of it)."""
    rendered = "\n".join(f"{name}={environ.get(name, '')}" for name in PROFILE_ENV_VARS)
    return hashlib.sha256(rendered.encode()).hexdigest()[:16]


def cache_file(cache_dir: Path, environ: Mapping[str, str]) -> Path:
    return cache_dir / f"{profile_key(environ)}.msgpack"


def seed_target(target_path: Path, cache_dir: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Put the cached parse of this profile in a run's new target folder; False when there
    is none yet (dagster-dbt then copies the project's own, as without this cache)."""
    cached = cache_file(cache_dir, environ)
    if not cached.is_file():
        return False
    target_path.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(cached, target_path / PARTIAL_PARSE_FILE)
    except FileNotFoundError:  # another process pruned it just now
        return False
    with contextlib.suppress(OSError):  # pruned meanwhile, or another user's file
        os.utime(cached)  # used last: the pruning keeps it
    return True


def keep_parse(target_path: Path, cache_dir: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Keep the parse dbt wrote in a run's target folder for the next run of this profile.
    Written aside then renamed, so a run reading the cache never sees half a file."""
    written = target_path / PARTIAL_PARSE_FILE
    if not written.is_file():
        return False
    cache_dir.mkdir(parents=True, exist_ok=True)
    destination = cache_file(cache_dir, environ)
    partial = destination.with_name(f"{destination.name}.{os.getpid()}.tmp")
    shutil.copyfile(written, partial)
    os.replace(partial, destination)
    with contextlib.suppress(OSError):
        prune(cache_dir)
    return True


def prune(cache_dir: Path, keep: int | None = None, now: float | None = None) -> list[Path]:
    """Remove all but the ``keep`` (default ``PARSES_KEPT``) parses used last, and temporary
    files abandoned by a killed process; the files removed. Files that vanish meanwhile
    (another process pruning) are skipped. Two processes pruning at once may evict a parse
    just rewritten: that costs a full parse later, never a wrong one."""
    keep = PARSES_KEPT if keep is None else keep
    now = time.time() if now is None else now
    parses, removed = [], []
    for path in cache_dir.iterdir():
        try:
            modified = path.stat().st_mtime
        except FileNotFoundError:
            continue
        if path.suffix == ".msgpack":
            parses.append((modified, path))
        elif path.suffix == ".tmp" and now - modified > ABANDONED_AFTER_SECONDS:
            removed.append(path)
    parses.sort(reverse=True)
    removed += [path for _, path in parses[keep:]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
