"""A severity model compiled for NumPy arrays: lookup tables and flat trees, and nothing of
scikit-learn.

``ml.array_model`` compiles a fitted pipeline (``CodebookTyper`` + gradient boosting, and
its calibration map) into the arrays held here; this module scores with them, and writes
and reads them as one ``.npz`` file (arrays only: NumPy reads it without pickle). The
training run stores that file beside the registered model (``ml.registry``), so that the
API serves a champion without importing scikit-learn (and with it SciPy's statistics) or
skops, and without rebuilding the scikit-learn object first: about 2.3 s of the 5.8 s a
service process took to start with the national champion.

Scoring is one gather per column for the bins, one compiled call that walks every tree
(``ml.tree_walk``), the rows of a large batch split over threads (``ml.threads``), then the
booster's link (softmax, computed as scikit-learn computes it) and the calibration map: the
probabilities of ``Pipeline.predict_proba`` to the last bit (tests/api/test_array_scoring.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from ml.calibration_map import CalibrationMap
from ml.threads import threads_for_rows
from ml.tree_walk import argmax_rows, raw_scores, staged_raw_scores

#: Most rows walked in one call (``ml.tree_walk.add_trees``): a large batch is binned and
#: walked chunk by chunk, on every core, and never binned whole.
CHUNK_ROWS = 8_192
#: The layout of the file: a reader refuses another one rather than misread it.
FILE_FORMAT = 1
_TREE_ARRAYS = ("roots", "feature", "children", "table_start", "go_left", "value")


class UnknownFileFormat(ValueError):
    """A compiled model file of a layout this code does not read (a newer one)."""


class ArrayModel(Protocol):
    """What the API scores with: float64 rows (features in the given column order, NaN =
    not recorded) in, class probabilities out (columns in ``classes_`` order)."""

    classes_: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


class CompiledTrees:
    """A compiled gradient boosting (and calibration map) scoring float rows whose columns
    are ``columns`` (NaN = not recorded)."""

    #: It picks its threads itself (``ml.threads``): callers need not limit OpenMP.
    manages_threads = True

    # Set by ml.array_model.CompiledBoosting from the fitted objects, or by ``read``:
    classes_: np.ndarray
    #: The booster's features in its own column order (its categorical ones first) ...
    source_names: list[str]
    #: ... and where each is in the rows given (``columns``).
    _source: np.ndarray
    _n_categorical: int
    _to_bin: np.ndarray  # every categorical column's code -> bin table, stacked
    _table_offset: np.ndarray
    _max_code: np.ndarray
    _thresholds: list[np.ndarray]  # per column (empty for a categorical one)
    _numeric_missing_bin: np.ndarray
    _trees: tuple[np.ndarray, ...]  # ml.tree_walk's arrays, in _TREE_ARRAYS order
    _baseline: np.ndarray
    #: A calibration map applied to the booster's probabilities, or None.
    calibration: CalibrationMap | None

    def _bind(self, columns: list[str]) -> None:
        """Read the rows' columns ``columns``: where each of the booster's features is."""
        missing = [name for name in self.source_names if name not in columns]
        if missing:
            raise ValueError(f"The model needs features the rows do not have: {missing}")
        self._source = np.array([columns.index(name) for name in self.source_names], dtype=np.intp)
        # Numba compiles the walk on its first call (or loads it from its cache): at load,
        # not in the first request.
        self.raw_predict(np.full((1, len(columns)), np.nan))

    # -- the bins: columns in the booster's order, each value as the bin the trees compare --

    def _lookup(self, codes: np.ndarray, table: np.ndarray) -> np.ndarray:
        """``table`` (stacked per column) at each code: a code outside a column's table, a
        fraction, a negative number or NaN take the column's last slot (not in the code book)."""
        valid = (codes >= 0) & (codes <= self._max_code) & (np.trunc(codes) == codes)
        slot = np.where(valid, codes, self._max_code + 1).astype(np.intp) + self._table_offset
        return table[slot]

    def _bins(self, X: np.ndarray) -> np.ndarray:
        """Each column as a bin: a category's booster index (missing or unknown: one past the
        last), a number's count of split thresholds below it (NaN: one past the count)."""
        ordered = np.asarray(X, dtype=np.float64)[:, self._source]
        bins = np.empty(ordered.shape, dtype=np.uint16)  # at most 257 bins a column
        c = self._n_categorical
        if c:
            bins[:, :c] = self._lookup(ordered[:, :c], self._to_bin)
        for j in range(c, ordered.shape[1]):
            bins[:, j] = np.searchsorted(self._thresholds[j], ordered[:, j])  # NaN sorts last
        numbers = ordered[:, c:]
        missing = np.isnan(numbers)
        if missing.any():
            bins[:, c:][missing] = np.broadcast_to(self._numeric_missing_bin, numbers.shape)[missing]
        return bins

    # -- scoring ---------------------------------------------------------------------------

    def _raw_chunk(self, X: np.ndarray) -> np.ndarray:
        return raw_scores(self._bins(X), self._trees, self._baseline)

    def raw_predict(self, X: np.ndarray) -> np.ndarray:
        """The booster's raw scores (one column per tree of an iteration); a large batch in
        chunks over threads (the walk lets go of the GIL)."""
        threads = threads_for_rows(len(X))
        size = min(CHUNK_ROWS, -(-len(X) // threads))
        if len(X) <= size:
            return self._raw_chunk(X)
        chunks = [X[s : s + size] for s in range(0, len(X), size)]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score") as pool:
            return np.concatenate(list(pool.map(self._raw_chunk, chunks)))

    def staged_raw(self, X: np.ndarray):
        """The booster's raw scores of ``X`` after each of its iterations, in one array
        updated in place (copy what is kept; ``ml.tree_walk.staged_raw_scores``). On one
        thread, for the whole of ``X`` (training's validation rows: they fit in memory as bins)."""
        return staged_raw_scores(self._bins(X), self._trees, self._baseline)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        proba = link_inverse(self.raw_predict(X))
        return proba if self.calibration is None else self.calibration.transform(proba)

    # -- the file ----------------------------------------------------------------------------

    def write(self, path: Path, model_uri: str = "") -> None:
        """Every array in one ``.npz``, with the URI of the model it was compiled from."""
        arrays = {
            "format": np.array(FILE_FORMAT),
            "model_uri": np.array(model_uri),
            "classes": np.asarray(self.classes_),
            "source_names": np.array(self.source_names),
            "n_categorical": np.array(self._n_categorical),
            "to_bin": self._to_bin,
            "table_offset": self._table_offset,
            "max_code": self._max_code,
            "numeric_missing_bin": self._numeric_missing_bin,
            "baseline": self._baseline,
            **{f"thresholds/{j}": t for j, t in enumerate(self._thresholds)},
            **{f"trees/{name}": a for name, a in zip(_TREE_ARRAYS, self._trees, strict=True)},
        }
        calibration = self.calibration
        if calibration is not None:
            arrays["calibration/method"] = np.array(calibration.method)
            if calibration.method == "sigmoid":
                arrays["calibration/slopes"] = np.asarray(calibration.slopes, dtype=np.float64)
                arrays["calibration/intercepts"] = np.asarray(calibration.intercepts, dtype=np.float64)
            else:
                for j, (x, y) in enumerate(zip(calibration.knots_x, calibration.knots_y, strict=True)):
                    arrays[f"calibration/knots_x/{j}"] = np.asarray(x, dtype=np.float64)
                    arrays[f"calibration/knots_y/{j}"] = np.asarray(y, dtype=np.float64)
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def read(cls, path: Path, columns: list[str]) -> tuple[CompiledTrees, str]:
        """The model written by ``write``, for rows of ``columns``; and its model URI."""
        with np.load(path, allow_pickle=False) as file:
            arrays = {name: file[name] for name in file.files}
        if int(arrays["format"]) != FILE_FORMAT:
            found = int(arrays["format"])
            raise UnknownFileFormat(f"{path}: compiled model format {found}, not {FILE_FORMAT}")
        compiled = cls.__new__(cls)
        compiled.classes_ = arrays["classes"]
        compiled.source_names = [str(name) for name in arrays["source_names"]]
        compiled._n_categorical = int(arrays["n_categorical"])
        compiled._to_bin = arrays["to_bin"]
        compiled._table_offset = arrays["table_offset"]
        compiled._max_code = arrays["max_code"]
        compiled._numeric_missing_bin = arrays["numeric_missing_bin"]
        compiled._baseline = arrays["baseline"]
        compiled._thresholds = [arrays[f"thresholds/{j}"] for j in range(len(compiled.source_names))]
        compiled._trees = tuple(arrays[f"trees/{name}"] for name in _TREE_ARRAYS)
        compiled.calibration = None
        if "calibration/method" in arrays:
            method = str(arrays["calibration/method"])
            if method == "sigmoid":
                compiled.calibration = CalibrationMap(
                    method, slopes=arrays["calibration/slopes"], intercepts=arrays["calibration/intercepts"]
                )
            else:
                knots = range(len(compiled.classes_))
                compiled.calibration = CalibrationMap(
                    method,
                    knots_x=[arrays[f"calibration/knots_x/{j}"] for j in knots],
                    knots_y=[arrays[f"calibration/knots_y/{j}"] for j in knots],
                )
        compiled._bind(columns)
        return compiled, str(arrays["model_uri"])


def link_inverse(raw: np.ndarray) -> np.ndarray:
    """Class probabilities from a gradient boosting's raw scores, computed as scikit-learn's
    losses compute them (the same operations in the same order, hence the same bits): the
    softmax of ``sklearn.utils.extmath.softmax`` for several classes, the logistic function
    (SciPy's ``expit``, as scikit-learn calls it) for two."""
    if raw.shape[1] > 1:
        proba = np.array(raw, dtype=np.float64, copy=True)
        proba -= np.reshape(np.max(proba, axis=1), (-1, 1))
        np.exp(proba, out=proba)
        proba /= np.reshape(np.sum(proba, axis=1), (-1, 1))
        return proba
    from scipy.special import expit  # two classes only: SciPy's special functions, not its stats

    proba = np.empty((raw.shape[0], 2), dtype=raw.dtype)
    proba[:, 1] = expit(raw[:, 0])
    proba[:, 0] = 1 - proba[:, 1]
    return proba


#: Scores farther apart than this (relative to the highest, absolute below 1) keep their
#: order through the softmax once rounded: only scores a few roundings apart (about 1e-15)
#: can share a probability, so this is a wide margin.
NEAR_TIE = 1e-9


def predicted_columns(raw: np.ndarray) -> np.ndarray:
    """``link_inverse(raw).argmax(axis=1)`` to the bit, without the softmax of most rows: a
    row's class is the argmax of its raw scores, which the softmax keeps, except where
    another score lies within ``NEAR_TIE`` of the highest, or a score is NaN or infinite:
    those rows take the argmax of the softmax itself. Training asks it after every
    iteration (``ml.models.staged_class_columns``), where the softmax of 150,000 rows took
    most of the time."""
    if raw.shape[1] == 1:  # two classes: the logistic function
        return link_inverse(raw).argmax(axis=1)
    columns, near_tie = np.empty(len(raw), dtype=np.intp), np.empty(len(raw), dtype=np.bool_)
    argmax_rows(raw, NEAR_TIE, columns, near_tie)
    if near_tie.any():
        columns[near_tie] = link_inverse(raw[near_tie]).argmax(axis=1)
    return columns
