"""A body of valid road users read straight into the float array the model scores.

The request models (``api.schemas``) run two Python validators per code (a whole number,
one of the code book's): validating a 10,000-row batch with them took about 100 ms, and
building the array from 10,000 model objects 20 ms more, out of a 0.3 s budget. Most
bodies are valid, so ``RoadUserReader`` reads them with pydantic-core alone (each field a
strict, finite number or null; every field present and no other), then checks the codes,
whole numbers and ranges on the array's columns at once. The JSON is parsed in one call
(about 30 ms of the GIL for a 10,000-row body; the validation goes in slices). A body it
does not accept goes through the request models, which say what is wrong: the 422s are
theirs.
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
        # Every check is a few NumPy calls over all the columns at once (one road user's
        # check must cost microseconds, not a call per column).
        features = spec.features
        self._categorical = np.array([f.is_categorical for f in features])
        #: Columns the request models read as Python ints (codes, whole numbers).
        self._as_int = np.array([f.is_categorical or f.data_type == "integer" for f in features])
        # Each categorical column's codes as one slice of a flat table (code -> in the book).
        highest = np.array([max(f.codes) if f.is_categorical else 0 for f in features], dtype=np.intp)
        offsets = np.concatenate([[0], np.cumsum(highest + 1)[:-1]])
        self._is_code = np.zeros(int((highest + 1).sum()), dtype=bool)
        for f, offset in zip(features, offsets, strict=True):
            if f.is_categorical:
                self._is_code[[offset + code for code in f.codes]] = True
        self._highest_code = highest[self._categorical].astype(np.float64)
        self._code_offset = offsets[self._categorical]
        numeric = [f for f in features if not f.is_categorical]
        self._low = np.array([f.minimum for f in numeric], dtype=np.float64)
        self._high = np.array([f.maximum for f in numeric], dtype=np.float64)
        self._whole_number = self._as_int[~self._categorical]

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
        codes, numbers = X[:, self._categorical], X[:, ~self._categorical]
        recorded = ~np.isnan(codes)
        in_table = recorded & (codes >= 0) & (codes <= self._highest_code)
        slot = np.where(in_table, codes, 0)
        is_code = self._is_code[slot.astype(np.intp) + self._code_offset]
        in_book = in_table & (np.trunc(slot) == slot) & is_code
        if not (in_book | ~recorded).all():
            raise ValueError("a code outside the code book")
        with np.errstate(invalid="ignore"):  # NaN compares False: "not recorded" is checked apart
            in_range = (numbers >= self._low) & (numbers <= self._high)
            whole = (np.trunc(numbers) == numbers) | ~self._whole_number
        if not ((in_range & whole) | np.isnan(numbers)).all():
            raise ValueError("a number out of range or not whole")
        # The models make -0.0 the int 0 where they read ints: +0.0 here too (x + 0.0 is
        # x for any other value), so that the array (and the prediction log) is theirs.
        X[:, self._as_int] += 0.0
        return X
