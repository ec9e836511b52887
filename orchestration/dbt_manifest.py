"""``python -m orchestration.dbt_manifest`` (``make manifest``): the dbt manifest Dagster
builds its dbt assets from, parsed again only when something it is made of changed.

`make run`, `make test` and the UI targets each need ``dbt_project/<target>/manifest.json``.
A ``dbt parse`` costs 3 to 8 s even when nothing changed, most of it dbt's own start-up
(``dbt --version`` alone: 5.6 s on a slow machine), and 23 s when dbt cannot parse
partially; that was paid at the start of every ``make run``. A manifest is a function of
the project's files, of the environment variables read while parsing (the project's
``env_var()`` calls, the profile's among them, and dbt's own ``DBT_*``) and of the installed
dbt packages (dbt-core, the adapters and their macros): their digest is kept beside the
manifest with the manifest's own hash, and dbt parses when either differs (a manifest
another command wrote there, such as ``dbt docs generate``, is parsed over) or the manifest
is gone. One process at a time checks and parses (a lock beside the manifest): under
``dagster dev`` several code servers load at once.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import distributions
from pathlib import Path

from orchestration import settings

DIGEST_FILE = "manifest.digest"
LOCK_FILE = "manifest.lock"
#: What dbt writes into the project folder besides its target folders (its log, its user
#: id): never read by a parse. Installed packages (dbt_packages) are read, so hashed.
NOT_SOURCES = {"logs", ".user.yml"}
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
    of each environment variable the sources name in ``env_var()`` and of dbt's ``DBT_*``
    (unset told apart from empty, as ``env_var()`` does), the installed dbt packages."""
    digest = hashlib.sha256()
    names: set[str] = set()
    for path in source_files(project_dir):
        content = path.read_bytes()
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + content + b"\0")
        names.update(_ENV_VAR.findall(content.decode("utf-8", errors="replace")))
    names.update(name for name in environ if name.startswith("DBT_"))
    for name in sorted(names):
        value = environ.get(name)
        digest.update(f"{name}\1\0".encode() if value is None else f"{name}={value}\0".encode())
    for package in sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions()):
        if package.lower().startswith(("dbt-", "dbt_")):
            digest.update(package.encode() + b"\0")
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_current(target_dir: Path, digest: str) -> bool:
    """The stored digest is this one, and the manifest is the one parsed with it."""
    manifest, stored = target_dir / "manifest.json", target_dir / DIGEST_FILE
    if not (manifest.is_file() and stored.is_file()):
        return False
    return stored.read_text().split() == [digest, file_hash(manifest)]


def ensure_manifest(project_dir: Path, target_path: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Parse the project into ``target_path`` (relative to the project) unless its manifest is
    current; True when dbt parsed. A failed parse leaves no digest: the next call parses."""
    target_dir = project_dir / target_path
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
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
        manifest = target_dir / "manifest.json"
        (target_dir / DIGEST_FILE).write_text(f"{digest} {file_hash(manifest)}\n")
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
