"""The feature specification: one source of truth for training and the scoring API.

It is read from the dbt project: the model that publishes the features (``ml_features.yml``:
each column's type, role and range), the code-book entry of each code column (declared once,
as ``meta.codes`` on the staging column that decodes it) and the code-book seeds (the codes
each categorical feature accepts, with their English labels). Nothing here is typed twice.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import yaml

#: Paths inside the dbt project.
ML_FEATURES_YAML = Path("models") / "marts" / "ml_features.yml"
MODELS_DIR = Path("models")
CODE_SEEDS = (Path("seeds") / "baac_codes.csv", Path("seeds") / "derived_codes.csv")
COLUMNS_SEED = Path("seeds") / "baac_columns.csv"


@dataclass(frozen=True)
class Feature:
    name: str
    data_type: str  # the dbt contract type: integer, double precision, ...
    description: str
    #: For a categorical feature: allowed code -> English label, from the code book.
    codes: dict[int, str] = field(default_factory=dict)
    codebook_entry: str | None = None  # e.g. "caracteristiques.lum"
    #: For a numeric feature: the bounds its values keep to (dbt tests them too).
    minimum: float | None = None
    maximum: float | None = None
    group: str = ""  # a heading for forms: When, Conditions and road, Vehicle and accident, Road user
    #: The feature set that brought the feature (``meta.since``; 1, the first, when not
    #: declared): the model trained without the newest set measures what that set adds.
    since: int = 1

    @property
    def is_categorical(self) -> bool:
        """A code column: it has a code-book entry, and its codes are categories, not numbers."""
        return self.codebook_entry is not None

    @property
    def kind(self) -> str:
        return "categorical" if self.is_categorical else "numeric"


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]
    target: str
    key: str
    split: str
    #: Target class -> label (severity 1..4).
    classes: dict[int, str]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.is_categorical]

    def __getitem__(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)

    @property
    def feature_set(self) -> int:
        """The newest feature set among the features (``Feature.since``)."""
        return max((f.since for f in self.features), default=1)

    def previous_feature_set(self) -> FeatureSpec | None:
        """The same specification without the features of the newest feature set: what
        the model was trained on before them. None when every feature is of one set."""
        previous = tuple(f for f in self.features if f.since < self.feature_set)
        return replace(self, features=previous) if previous else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_not_recorded(dbt_project_dir: Path) -> dict[str, set[str]]:
    """``{"table.column": {codes}}``: the codes the code book calls "not recorded"
    (``baac_columns.not_recorded_values``), which staging turns into NULL."""
    return {
        f"{row['table']}.{row['column']}": {v for v in row["not_recorded_values"].split(";") if v.isdigit()}
        for row in _read_csv(dbt_project_dir / COLUMNS_SEED)
    }


def read_codebook(dbt_project_dir: Path) -> dict[str, dict[int, str]]:
    """``{"table.column": {code: English label}}``: the codes a value may take.

    Codes the code book calls "not recorded" (such as an undocumented 0, or the empty field)
    are left out: staging turns them into NULL, which the model reads as missing.
    """
    not_recorded = read_not_recorded(dbt_project_dir)
    codebook: dict[str, dict[int, str]] = {}
    for path in CODE_SEEDS:
        for row in _read_csv(dbt_project_dir / path):
            entry, code = f"{row['table']}.{row['column']}", row["code"].strip()
            if code.isdigit() and code not in not_recorded.get(entry, ()):
                codebook.setdefault(entry, {})[int(code)] = row["label_en"]
    return codebook


def _model_columns(path: Path):
    for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
        for column in model.get("columns", []):
            yield model["name"], column, column.get("config", {}).get("meta", {})


def column_codebook_entries(dbt_project_dir: Path) -> dict[str, str]:
    """``{column: "table.column"}``: the code-book entry of every code column, read from the
    ``meta.codes`` its dbt model declares (once, where staging decodes it). A column name
    means the same in every model, so two different entries for one name are an error."""
    entries: dict[str, str] = {}
    for path in sorted((dbt_project_dir / MODELS_DIR).rglob("*.yml")):
        for model, column, meta in _model_columns(path):
            entry = meta.get("codes")
            if entry is None:
                continue
            if entries.setdefault(column["name"], entry) != entry:
                raise ValueError(
                    f"{path}: {model}.{column['name']} declares codes {entry}, "
                    f"another model {entries[column['name']]}"
                )
    return entries


@cache
def load_feature_spec(dbt_project_dir: Path) -> FeatureSpec:
    """The feature specification of the dbt project in ``dbt_project_dir``."""
    path = dbt_project_dir / ML_FEATURES_YAML
    codebook = read_codebook(dbt_project_dir)
    entries = column_codebook_entries(dbt_project_dir)
    features, roles = [], {}
    for _, column, meta in _model_columns(path):
        role = meta["role"]
        if role != "feature":
            roles[role] = column["name"]
            continue
        entry = entries.get(column["name"])
        codes = dict(codebook.get(entry, {})) if entry else {}
        if entry and not codes:
            raise ValueError(f"ml_features.{column['name']}: no codes for {entry} in the seeds")
        features.append(
            Feature(
                name=column["name"],
                data_type=column["data_type"],
                description=column.get("description", ""),
                codes=codes,
                codebook_entry=entry,
                minimum=meta.get("minimum"),
                maximum=meta.get("maximum"),
                group=meta.get("group", ""),
                since=int(meta.get("since", 1)),
            )
        )
    return FeatureSpec(
        features=tuple(features),
        target=roles["target"],
        key=roles["key"],
        split=roles["split"],
        classes=codebook[entries[roles["target"]]],
    )
