"""The training data set logged to MLflow: MLflow's own schema, found column by column."""

import numpy as np
import pandas as pd
import pytest
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.types.utils import _infer_schema

from ml.tracking import FloatFrameDataset


def test_the_schema_is_the_one_mlflow_infers_value_by_value():
    frame = pd.DataFrame(
        {"age": [30.0, np.nan, 41.0], "lighting_code": [1.0, 2.0, 5.0], "severity": [1.0, 4.0, 2.0]}
    )
    dataset = FloatFrameDataset(frame, source=CodeDatasetSource({}), targets="severity", name="ml_features")
    assert dataset.schema == _infer_schema(frame)
    assert [c.required for c in dataset.schema.inputs] == [False, True, True]
    assert dataset.to_dict()["schema"]  # what log_input stores


def test_a_frame_of_other_types_is_refused():
    dataset = FloatFrameDataset(pd.DataFrame({"code": ["1"]}), source=CodeDatasetSource({}))
    with pytest.raises(TypeError, match="float64"):
        _ = dataset.schema
