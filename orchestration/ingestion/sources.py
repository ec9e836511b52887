"""Where the raw CSVs come from: a local folder, the Kaggle dataset, or data.gouv.fr.

Each source answers one question: which files hold table T for accident years Y.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestration import settings
from orchestration.ingestion.csv_files import RawInputError
from orchestration.ingestion.download import download
from orchestration.ingestion.tables import RawTable

SOURCE_KINDS = ("local", "kaggle", "datagouv")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DatagouvFile:
    year: int
    table: str
    file_name: str
    url: str
    sha256: str | None = None
    size: int | None = None


def read_datagouv_manifest(path: Path) -> dict[tuple[int, str], DatagouvFile]:
    """Parse the manifest of data.gouv.fr files into ``{(year, table stem): file}``."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = {}
    for year, tables in (document.get("years") or {}).items():
        for stem, entry in tables.items():
            entries[(int(year), stem)] = DatagouvFile(year=int(year), table=stem, **entry)
    return entries


def kaggle_layout_files(directory: Path, table: RawTable) -> list[Path]:
    """The Kaggle layout holds every year of a table in one file."""
    return [directory / table.kaggle_file]


def folder_files(directory: Path, table: RawTable, years: list[int]) -> list[Path]:
    """A folder in the Kaggle layout (one file per table), else in data.gouv.fr's (one file
    per table and year, ``<stem>_<year>.csv``, as the manifest names them; the years it
    does not hold are skipped). data.gouv.fr has no holiday file: a folder without one uses
    the shipped sample's."""
    kaggle = directory / table.kaggle_file
    if kaggle.is_file():
        return [kaggle]
    if table.datagouv_stem is None:
        return [settings.DATA_DIR / "sample" / table.kaggle_file]
    yearly = [directory / f"{table.datagouv_stem}_{year}.csv" for year in years]
    present = [path for path in yearly if path.is_file()]
    # Nothing of either layout: name the Kaggle file, which the loader reports as missing.
    return present or [kaggle]


def datagouv_files(
    table: RawTable,
    years: list[int],
    manifest: Path,
    cache_dir: Path,
    progress: Progress,
) -> list[Path]:
    """Download (or reuse from the cache) the yearly files of ``table`` for ``years``."""
    entries = read_datagouv_manifest(manifest)
    paths = []
    for year in years:
        entry = entries.get((year, table.datagouv_stem))
        if entry is None:
            raise RawInputError(f"{table.name}: {manifest} lists no {table.datagouv_stem} file for {year}")
        dest = cache_dir / "datagouv" / str(year) / entry.file_name
        paths.append(download(entry.url, dest, sha256=entry.sha256, size=entry.size, progress=progress))
    return paths


def kaggle_dataset_dir(progress: Progress) -> Path:
    """Download (or reuse kagglehub's cache of) the Kaggle dataset; credentials come from
    the environment (``KAGGLE_USERNAME``/``KAGGLE_KEY`` or ``~/.kaggle/kaggle.json``)."""
    import kagglehub  # imported here: only this source needs it

    progress(f"Fetching Kaggle dataset {settings.KAGGLE_DATASET} through kagglehub")
    return Path(kagglehub.dataset_download(settings.KAGGLE_DATASET))


def source_files(
    kind: str,
    table: RawTable,
    years: list[int],
    *,
    local_dir: Path,
    datagouv_manifest: Path,
    download_dir: Path,
    progress: Progress,
) -> list[Path]:
    """The files that hold ``table`` for ``years`` in source ``kind``."""
    if kind == "local":
        return folder_files(local_dir, table, years)
    if kind == "kaggle":
        return kaggle_layout_files(kaggle_dataset_dir(progress), table)
    if kind == "datagouv":
        if table.datagouv_stem is None:
            # data.gouv.fr publishes no holiday file: take the Kaggle one from the local folder.
            return kaggle_layout_files(local_dir, table)
        return datagouv_files(table, years, datagouv_manifest, download_dir, progress)
    raise ValueError(f"Unknown raw source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
