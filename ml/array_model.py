"""Scoring on NumPy arrays: a fitted model compiled once, at load, into lookup tables.

The registered model is a scikit-learn ``Pipeline``: ``CodebookTyper`` (pandas Categoricals
over the code book) then a ``HistGradientBoostingClassifier``, whose own preprocessor
re-encodes each category as its index among the categories it saw in training (an
``OrdinalEncoder``: not the code book's order, since a code never seen in training has no
index). Calling it on one road user builds 39 pandas columns and a ``ColumnTransformer``
pass: tens of milliseconds spent on typing, not on trees.

``compile_model`` reads those encodings once and keeps, per feature, a table from the value
a request sends (a code as a float, a number, NaN for "not recorded") to a bin, and flattens
every tree into arrays whose nodes send each bin left or right: a ``CompiledTrees``
(``ml.compiled_model``, which scores with them and needs no scikit-learn; the training run
stores them for the API).

It gives the probabilities of ``Pipeline.predict_proba`` on the same road users to the last
bit (``tests/api/test_array_scoring.py``). Anything else (a baseline, a model of another
shape) is scored through its own ``predict_proba`` on a DataFrame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from ml.calibration import CalibratedSeverityModel
from ml.compiled_model import ArrayModel, CompiledTrees
from ml.models import CodebookTyper


class FrameModel:
    """Any other estimator: the rows become a DataFrame with the feature names."""

    def __init__(self, estimator, columns: list[str]):
        self.estimator = estimator
        self.columns = list(columns)

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(pd.DataFrame(X, columns=self.columns))


class CompiledBoosting(CompiledTrees):
    """``CodebookTyper`` + ``HistGradientBoostingClassifier`` as lookup tables and flat trees."""

    def __init__(self, pipeline: Pipeline, columns: list[str], calibration=None):
        #: A calibration map applied to the booster's probabilities (``ml.calibration``), or None.
        self.calibration = calibration
        typer: CodebookTyper = pipeline.steps[0][1]
        booster: HistGradientBoostingClassifier = pipeline.steps[-1][1]
        self.classes_ = booster.classes_
        # The booster's column order: its preprocessor puts the categorical columns first.
        is_categorical = (
            np.zeros(len(typer.columns), dtype=bool)
            if booster.is_categorical_ is None
            else np.asarray(booster.is_categorical_, dtype=bool)
        )
        order = np.concatenate([np.flatnonzero(is_categorical), np.flatnonzero(~is_categorical)])
        names = [typer.columns[i] for i in order]
        self.source_names = names
        self._n_categorical = int(is_categorical.sum())
        # Per categorical column: the code (as the request sends it) -> the booster's index.
        booster_categories = (
            booster._preprocessor.named_transformers_["encoder"].categories_ if self._n_categorical else []
        )
        self._code_tables = [
            typer.booster_code_table(name, seen)
            for name, seen in zip(names[: self._n_categorical], booster_categories, strict=True)
        ]
        #: How many categories the booster knows per categorical column (its indices 0..n-1).
        self._n_seen = [int(np.sum(~pd.isna(seen))) for seen in booster_categories]
        # A category the encoder knows but the binning never saw (it bins a subsample of large
        # training sets) is missing to the trees: make it NaN here already, so that the
        # compiled trees and the pipeline agree on it.
        for j, table in enumerate(self._code_tables):
            known = np.asarray(booster._bin_mapper.bin_thresholds_[j], dtype=np.float64)
            table.table[~np.isin(table.table, known)] = np.nan
        self._known_bitsets, self._f_idx_map = booster._bin_mapper.make_known_categories_bitsets()
        self._predictors = [tree for iteration in booster._predictors for tree in iteration]
        self._baseline = np.asarray(booster._baseline_prediction, dtype=np.float64).reshape(1, -1)
        self._compile_trees()
        self._bind(columns)

    # -- the bins' tables (``CompiledTrees._bins`` reads them) ---------------------------------

    def _stack_tables(self) -> None:
        """One flat table for every categorical column (code -> bin: the booster's index of
        the category, one past the last when missing or unknown), so that a batch's
        categories are binned by one gather, not one per column."""
        sizes = [len(t.table) for t in self._code_tables]
        self._table_offset = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        self._max_code = np.array([size - 2 for size in sizes], dtype=np.float64)
        to_index = np.concatenate([t.table for t in self._code_tables]) if sizes else np.zeros(0)
        missing_bin = np.repeat(np.array(self._n_seen, dtype=np.float64), sizes)
        self._to_bin = np.where(np.isnan(to_index), missing_bin, to_index).astype(np.intp)

    # -- the trees, flattened for ml.tree_walk -----------------------------------------------

    def _compile_trees(self) -> None:
        """Every tree's nodes in flat arrays (``ml.tree_walk``), built by NumPy over all the
        nodes at once (the national champion has 158,000: 0.6-0.9 s node by node in Python)."""
        trees = self._predictors
        nodes = np.concatenate([tree.nodes for tree in trees])
        sizes = np.array([len(tree.nodes) for tree in trees], dtype=np.intp)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        first_node = np.repeat(roots, sizes)  # of each node's tree
        leaf = nodes["is_leaf"].astype(bool)
        categorical = nodes["is_categorical"].astype(bool) & ~leaf
        numeric = ~leaf & ~categorical
        feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        n_features = len(self.source_names)
        # Each column becomes a bin: for a number, how many split thresholds lie below it
        # (NaN: one past the last); for a category, its index (missing/unknown: one past).
        by_feature = [numeric & (feature == f) for f in range(n_features)]
        self._thresholds = [np.unique(nodes["num_threshold"][mask]).astype(np.float64) for mask in by_feature]
        widths = np.array(
            [
                self._n_seen[f] + 1 if f < self._n_categorical else len(self._thresholds[f]) + 2
                for f in range(n_features)
            ],
            dtype=np.intp,
        )
        index = np.arange(len(nodes), dtype=np.intp)
        children = np.empty(2 * len(nodes), dtype=np.intp)
        children[0::2] = np.where(leaf, index, first_node + nodes["left"])  # a leaf points to itself
        children[1::2] = np.where(leaf, index, first_node + nodes["right"])
        # One row of go_left per split node, one slot per bin of its feature (the last slot:
        # missing); the leaves share a first row they never read.
        split = np.flatnonzero(~leaf)
        width = widths[feature[split]]
        unused = int(widths.max(initial=1))
        start = np.concatenate([[0], np.cumsum(width)[:-1]]).astype(np.intp)
        table_start = np.zeros(len(nodes), dtype=np.intp)
        table_start[split] = unused + start
        owner = np.repeat(split, width)  # the node of each slot
        slot = np.arange(int(width.sum()), dtype=np.intp) - np.repeat(start, width)  # its bin
        missing_left = nodes["missing_go_to_left"].astype(bool)
        go_left = np.zeros(len(owner), dtype=bool)
        # A number: x <= threshold[k] exactly when at most k thresholds lie below x.
        k = np.zeros(len(nodes), dtype=np.intp)
        for f, mask in enumerate(by_feature):
            k[mask] = np.searchsorted(self._thresholds[f], nodes["num_threshold"][mask])
        in_number = numeric[owner]
        go_left[in_number] = slot[in_number] <= k[owner[in_number]]
        # A category: left when in the node's left bitset; one the binning never saw is missing.
        in_category = categorical[owner]
        node, category = owner[in_category], slot[in_category]
        word, bit = category // 32, (category % 32).astype(np.uint32)
        if len(node):
            bitsets = np.concatenate([tree.raw_left_cat_bitsets for tree in trees])
            first_bitset = np.repeat(
                np.cumsum([0] + [len(t.raw_left_cat_bitsets) for t in trees])[:-1], sizes
            )
            left = (bitsets[first_bitset[node] + nodes["bitset_idx"][node], word] >> bit) & 1
            known = (self._known_bitsets[self._f_idx_map[feature[node]], word] >> bit) & 1
            go_left[in_category] = (left == 1) | ((known == 0) & missing_left[node])
        go_left[start + width - 1] = missing_left[split]
        tables = np.concatenate([np.zeros(unused, dtype=np.uint8), go_left.astype(np.uint8)])
        value = nodes["value"].astype(np.float64)
        self._trees = (roots, feature, children, table_start, tables, value)
        self._numeric_missing_bin = np.array(
            [len(t) + 1 for t in self._thresholds[self._n_categorical :]], dtype=np.intp
        )
        self._stack_tables()


def compile_model(estimator, columns: list[str]) -> ArrayModel:
    """The fastest exact scorer of ``estimator`` for rows whose columns are ``columns``
    (a calibrated severity model: its pipeline compiled, then the same calibration map)."""
    if isinstance(estimator, CalibratedSeverityModel) and _is_severity_pipeline(estimator.pipeline):
        return CompiledBoosting(estimator.pipeline, columns, estimator.calibration)
    if _is_severity_pipeline(estimator):
        return CompiledBoosting(estimator, columns)
    return FrameModel(estimator, columns)


def _is_severity_pipeline(estimator) -> bool:
    return (
        isinstance(estimator, Pipeline)
        and len(estimator.steps) == 2
        and isinstance(estimator.steps[0][1], CodebookTyper)
        and isinstance(estimator.steps[-1][1], HistGradientBoostingClassifier)
    )
