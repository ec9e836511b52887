"""ml.threads: work split over threads gives the figures of one thread, to the last bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from ml import threads


def test_a_forest_predicted_in_blocks_of_rows_gives_one_calls_probabilities(monkeypatch):
    """The legacy baseline is scored in blocks of rows, one per core: each row's trees are
    added in the forest's order whatever the blocks, unlike the forest's own n_jobs."""
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(9_001, 6)), columns=list("abcdef"))
    y = (X["a"] + rng.normal(size=len(X)) > 0).astype(int) + (X["b"] > 1)
    forest = RandomForestClassifier(n_estimators=20, min_samples_leaf=5, random_state=0, n_jobs=1).fit(X, y)
    one_call = forest.predict_proba(X)
    on_arrays = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(X.to_numpy(), y)
    for cores in (1, 2, 3):
        monkeypatch.setattr(threads, "available_cores", lambda cores=cores: cores)
        assert np.array_equal(threads.predict_in_row_blocks(forest.predict_proba, X, len(X)), one_call)
        in_blocks = threads.predict_in_row_blocks(on_arrays.predict_proba, X.to_numpy(), len(X))
        assert np.array_equal(in_blocks, on_arrays.predict_proba(X.to_numpy()))
    # A small batch stays on the calling thread, whatever the cores.
    small = X.head(10)
    assert np.array_equal(threads.predict_in_row_blocks(forest.predict_proba, small, 10), one_call[:10])
