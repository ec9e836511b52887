"""The example road user of the API's documentation: a real row of the training data.

Each column's most frequent value taken alone makes an incoherent road user (a driver on a
pedestrian crossing, a Monday that is a weekend); a real row is coherent by construction.
The row chosen is the most ordinary one: every feature recorded, and as many code fields as
possible at their most frequent value (``ml.training.typical_road_user``); ties go to the
first row in key order, so the same data always gives the same example.

``python -m ml.examples`` writes it to ``api/examples/road_user.json`` from the warehouse.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml.data import read_training_tables, split_frame
from ml.defaults import DATA_DIR, DBT_PROJECT_DIR, PROJECT_ROOT, path_from_env
from ml.features import FeatureSpec, load_feature_spec
from ml.training import typical_road_user

EXAMPLE_PATH = PROJECT_ROOT / "api" / "examples" / "road_user.json"


def example_road_user(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    """The most ordinary fully recorded road user of the train split of ``features``
    (ml_features as ``ml.data.read_training_tables`` reads it), as a /predict body."""
    train = split_frame(features, "train")
    complete = train[train[spec.names].notna().all(axis=1)]
    if complete.empty:
        raise ValueError("No road user of the train split has every feature recorded")
    typical = typical_road_user(features, spec)
    codes = [f.name for f in spec.features if f.is_categorical]
    ordinary = (complete[codes] == pd.Series({c: typical[c] for c in codes})).sum(axis=1)
    row = complete.loc[ordinary.idxmax()]  # the first of the best, in key order
    return {
        f.name: float(row[f.name]) if f.data_type != "integer" else int(row[f.name]) for f in spec.features
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--warehouse", type=Path, default=path_from_env("DUCKDB_PATH", DATA_DIR / "warehouse.duckdb")
    )
    parser.add_argument("--output", type=Path, default=EXAMPLE_PATH)
    args = parser.parse_args()
    spec = load_feature_spec(DBT_PROJECT_DIR)
    with duckdb.connect(str(args.warehouse), read_only=True) as conn:
        features, _ = read_training_tables(conn, spec)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(example_road_user(features, spec), indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
