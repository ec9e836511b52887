"""The example road user of the API's documentation: the typical road user of the training
data (``ml.training.typical_road_user``: a real, fully recorded row, the one whose values are
together the most frequent), the same one the page starts from.

``python -m ml.examples`` writes it to ``api/examples/road_user.json`` from the warehouse.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml.data import read_features
from ml.defaults import DATA_DIR, DBT_PROJECT_DIR, PROJECT_ROOT, path_from_env
from ml.features import FeatureSpec, load_feature_spec
from ml.training import typical_road_user

EXAMPLE_PATH = PROJECT_ROOT / "api" / "examples" / "road_user.json"


def example_road_user(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    """The typical road user of the train split of ``features`` (ml_features, or its train
    split, as ``ml.data.read_features`` reads it), as a /predict body; it must be fully recorded."""
    typical = typical_road_user(features, spec)
    if any(value is None for value in typical.values()):
        raise ValueError("No road user of the train split has every feature recorded")
    return typical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--warehouse", type=Path, default=path_from_env("DUCKDB_PATH", DATA_DIR / "warehouse.duckdb")
    )
    parser.add_argument("--output", type=Path, default=EXAMPLE_PATH)
    args = parser.parse_args()
    spec = load_feature_spec(DBT_PROJECT_DIR)
    with duckdb.connect(str(args.warehouse), read_only=True) as conn:
        features = read_features(conn, spec, ("train",))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(example_road_user(features, spec), indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
