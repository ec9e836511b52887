"""A body of valid road users read straight into the float array the model scores.

The request models (``api.schemas``) run two Python validators per code (a whole number,
one of the code book's): validating a 10,000-row batch with them took about 100 ms, and
building the array from 10,000 model objects 20 ms more, out of a 0.3 s budget. Most
bodies are valid, so ``RoadUserReader`` reads them with pydantic-core alone (each field a
strict, finite number or null; every field present and no other), then checks the codes,
whole numbers and ranges on the array, one NumPy comparison per column. A body it does not
accept goes through the request models, which say what is wrong: the 422s are theirs.
``tests/api/test_batch_reader.py`` checks that it accepts nothing they refuse and reads
what it accepts as they do.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import AllowInfNan, ConfigDict, Strict, TypeAdapter, with_config
from pydantic_core import from_json
from typing_extensions import TypedDict

from api.schemas import MAX_BATCH_SIZE
from ml.features import FeatureSpec

#: Rows validated per call (see ``read``).
SLICE_ROWS = 500
#: A JSON number or null; a string, a boolean or a non-finite number is refused.
_Number = Annotated[float, Strict(), AllowInfNan(False)] | None


class RoadUserReader:
    """``read(body)``: the road users as rows x features (specification order, NaN = not
    recorded) and whether the body was a batch, or None when the request models must judge."""

    def __init__(self, spec: FeatureSpec):
        row = with_config(ConfigDict(extra="forbid"))(
            TypedDict("RoadUserRow", {name: _Number for name in spec.names})
        )
        self._rows = TypeAdapter(list[row])
        self._width = len(spec.names)
        self._codes = [
            np.array(sorted(f.codes), dtype=np.float64) if f.is_categorical else None for f in spec.features
        ]
        self._bounds = [(f.minimum, f.maximum) for f in spec.features]
        self._whole = [f.is_categorical or f.data_type == "integer" for f in spec.features]

    def read(self, body: bytes) -> tuple[np.ndarray, bool] | None:
        try:
            return self._read(body)
        except (ValueError, OverflowError):  # not JSON, not valid, or for the request models to say
            return None

    def _read(self, body: bytes) -> tuple[np.ndarray, bool] | None:
        payload = from_json(body, allow_inf_nan=False)
        if not isinstance(payload, list):
            return self._checked(self._array(self._rows.validate_python([payload]))), False
        if not 1 <= len(payload) <= MAX_BATCH_SIZE:
            return None
        X = np.empty((len(payload), self._width))
        # In slices: one call over 10,000 rows would hold the GIL (the event loop) throughout.
        for start in range(0, len(payload), SLICE_ROWS):
            rows = self._rows.validate_python(payload[start : start + SLICE_ROWS])
            X[start : start + len(rows)] = self._array(rows)
        return self._checked(X), True

    def _array(self, rows: list[dict]) -> np.ndarray:
        # The validated rows hold their fields in the schema's order, whatever the body's.
        values = [list(row.values()) for row in rows]
        return np.array(values, dtype=np.float64).reshape(len(rows), self._width)

    def _checked(self, X: np.ndarray) -> np.ndarray:
        """``X``, when every code is in its code book and every number whole where it must
        be and within its range; else ValueError."""
        checks = zip(X.T, self._codes, self._bounds, self._whole, strict=True)
        for column, codes, (low, high), whole in checks:
            present = column[~np.isnan(column)]
            if codes is not None and not np.isin(present, codes).all():
                raise ValueError
            if codes is None and not ((present >= low) & (present <= high)).all():
                raise ValueError
            if whole and not (np.trunc(present) == present).all():
                raise ValueError
        return X
