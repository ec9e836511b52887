"""The API's example road user (api/examples/road_user.json) is what ``ml.examples`` picks
from the sample: a real, fully recorded row of the train split, the most ordinary one."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.data import read_training_tables
from ml.defaults import DBT_PROJECT_DIR
from ml.examples import EXAMPLE_PATH, example_road_user
from ml.features import load_feature_spec

SPEC = load_feature_spec(DBT_PROJECT_DIR)


def test_the_example_file_is_the_one_picked_from_the_sample(pipeline_run):
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as conn:
        features, _ = read_training_tables(conn, SPEC)
    assert example_road_user(features, SPEC) == json.loads(EXAMPLE_PATH.read_text(encoding="utf-8"))


def test_the_example_is_the_typical_road_user_and_must_be_fully_recorded():
    """Train rows: an incomplete one, then a complete one whose codes are all rare, then
    three complete ones whose codes are all the most frequent: the first of those is picked,
    as a /predict body (whole numbers as int). Without a complete row there is no example."""
    codes = [f.name for f in SPEC.features if f.is_categorical]
    common = {f.name: (min(f.codes) if f.is_categorical else f.minimum) for f in SPEC.features}
    rows = pd.DataFrame([common] * 6, dtype="float64")
    rows.loc[0, "age"] = np.nan
    rows.loc[1, codes] = [max(SPEC[c].codes) for c in codes]
    rows.insert(0, "split", ["train", "train", "train", "train", "train", "test"])
    rows.insert(0, SPEC.key, [f"20160000000{i}" for i in range(6)])
    picked = example_road_user(rows, SPEC)
    assert picked == {n: (int(v) if SPEC[n].data_type == "integer" else v) for n, v in common.items()}
    assert {type(picked[f.name]) for f in SPEC.features if f.data_type == "integer"} == {int}
    with pytest.raises(ValueError, match="every feature recorded"):
        example_road_user(rows.assign(age=np.nan), SPEC)
