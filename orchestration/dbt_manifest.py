"""``python -m orchestration.dbt_manifest`` (``make manifest``): the dbt manifest Dagster
builds its dbt assets from, parsed again only when something it is made of changed.

`make run`, `make test` and the UI targets each need ``dbt_project/<target>/manifest.json``.
A ``dbt parse`` costs 3 to 8 s even when nothing changed, most of it dbt's own start-up
(``dbt --version`` alone: 5.6 s on a slow machine), and 23 s when dbt cannot parse
partially; that was paid at the start of every ``make run``. A manifest is a function of
the project's files, of the environment variables the project reads while parsing (its
``env_var()`` calls, the profile's among them) and of dbt's version: their digest is kept
beside the manifest, and dbt parses only when the digest differs or the manifest is gone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

from orchestration import settings

DIGEST_FILE = "manifest.digest"
#: What dbt writes into the project folder: its output, never its input.
NOT_SOURCES = {"logs", "dbt_packages", ".user.yml"}
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def source_files(project_dir: Path) -> list[Path]:
    """Every file dbt may read from the project, sorted (target folders and logs left out)."""
    files = []
    for path in project_dir.rglob("*"):
        top = path.relative_to(project_dir).parts[0]
        if path.is_file() and top not in NOT_SOURCES and not top.startswith("target"):
            files.append(path)
    return sorted(files)


def manifest_digest(project_dir: Path, environ: Mapping[str, str]) -> str:
    """A digest of what the manifest is made of: each source file's path and bytes, the value
    of each environment variable the sources name in ``env_var()``, dbt's version."""
    digest = hashlib.sha256()
    names: set[str] = set()
    for path in source_files(project_dir):
        content = path.read_bytes()
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + content + b"\0")
        names.update(_ENV_VAR.findall(content.decode("utf-8", errors="replace")))
    for name in sorted(names):
        digest.update(f"{name}={environ.get(name, '')}\0".encode())
    digest.update(f"dbt-core {version('dbt-core')} dbt-duckdb {version('dbt-duckdb')}".encode())
    return digest.hexdigest()


def is_current(target_dir: Path, digest: str) -> bool:
    stored = target_dir / DIGEST_FILE
    return (
        (target_dir / "manifest.json").is_file() and stored.is_file() and stored.read_text().strip() == digest
    )


def ensure_manifest(project_dir: Path, target_path: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Parse the project into ``target_path`` (relative to the project) unless its manifest is
    current; True when dbt parsed. A failed parse leaves no digest: the next call parses."""
    target_dir = project_dir / target_path
    digest = manifest_digest(project_dir, environ)
    if is_current(target_dir, digest):
        return False
    (target_dir / DIGEST_FILE).unlink(missing_ok=True)
    subprocess.run(
        [settings.dbt_executable(), "parse", "--profiles-dir", ".", "--quiet"]
        + ["--target-path", str(target_path)],
        cwd=project_dir,
        env=dict(environ),
        check=True,
    )
    (target_dir / DIGEST_FILE).write_text(digest + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="parse even when the manifest is current")
    args = parser.parse_args(argv)
    project_dir, target_path = settings.DBT_PROJECT_DIR, settings.dbt_target_path()
    if args.force:
        (project_dir / target_path / DIGEST_FILE).unlink(missing_ok=True)
    try:
        parsed = ensure_manifest(project_dir, target_path)
    except subprocess.CalledProcessError as error:
        print(f"dbt parse failed (exit {error.returncode}): see dbt's message above", file=sys.stderr)
        return 1
    if not parsed:
        print(f"dbt manifest up to date: {project_dir / target_path / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
