"""The feature specification: one source of truth for training and the scoring API.

It is read from the dbt model that publishes the features (``ml_features.yml``: each
column's type, role, kind and code-book entry) and from the code-book seeds (the codes each
categorical feature accepts, with their English labels). Nothing here is typed twice.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from orchestration.settings import DBT_PROJECT_DIR

ML_FEATURES_YAML = DBT_PROJECT_DIR / "models" / "marts" / "ml_features.yml"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
CODE_SEEDS = (SEEDS_DIR / "baac_codes.csv", SEEDS_DIR / "derived_codes.csv")
COLUMNS_SEED = SEEDS_DIR / "baac_columns.csv"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "categorical" or "numeric"
    data_type: str  # the dbt contract type: integer, double, ...
    description: str
    #: For a categorical feature: allowed code -> English label, from the code book.
    codes: dict[int, str] = field(default_factory=dict)
    codebook_entry: str | None = None  # e.g. "caracteristiques.lum"
    #: For a numeric feature: the bounds its values keep to (dbt tests them too).
    minimum: float | None = None
    maximum: float | None = None
    group: str = ""  # a heading for forms: When, Conditions and road, Vehicle and accident, Road user

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"


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


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_codebook() -> dict[str, dict[int, str]]:
    """``{"table.column": {code: English label}}``: the codes a value may take.

    Codes the code book calls "not recorded" (``baac_columns.not_recorded_values``, such as
    an undocumented 0, or the empty field) are left out: staging turns them into NULL,
    which the model reads as missing.
    """
    not_recorded = {
        f"{row['table']}.{row['column']}": {v for v in row["not_recorded_values"].split(";") if v.isdigit()}
        for row in _read_csv(COLUMNS_SEED)
    }
    codebook: dict[str, dict[int, str]] = {}
    for path in CODE_SEEDS:
        for row in _read_csv(path):
            entry, code = f"{row['table']}.{row['column']}", row["code"].strip()
            if code.isdigit() and code not in not_recorded.get(entry, ()):
                codebook.setdefault(entry, {})[int(code)] = row["label_en"]
    return codebook


def model_input(frame, spec: FeatureSpec):
    """The feature columns in specification order, as floats (a missing value is NaN):
    one dtype whatever the source (DuckDB, JSON), so the MLflow signature always matches."""
    return frame[spec.names].astype("float64")


@cache
def load_feature_spec(path: Path = ML_FEATURES_YAML) -> FeatureSpec:
    """Parse the ml_features model YAML into a FeatureSpec."""
    model = yaml.safe_load(path.read_text(encoding="utf-8"))["models"][0]
    codebook = read_codebook()
    features, roles = [], {}
    for column in model["columns"]:
        meta = column.get("config", {}).get("meta", {})
        role = meta["role"]
        if role != "feature":
            roles[role] = column["name"]
            continue
        entry = meta.get("codes")
        codes = dict(codebook[entry]) if entry else {}
        if entry and not codes:
            raise ValueError(f"ml_features.{column['name']}: no codes for {entry} in the seeds")
        features.append(
            Feature(
                name=column["name"],
                kind=meta["kind"],
                data_type=column["data_type"],
                description=column.get("description", ""),
                codes=codes,
                codebook_entry=entry,
                minimum=meta.get("minimum"),
                maximum=meta.get("maximum"),
                group=meta.get("group", ""),
            )
        )
    return FeatureSpec(
        features=tuple(features),
        target=roles["target"],
        key=roles["key"],
        split=roles["split"],
        classes=codebook["derived.severity"],
    )
