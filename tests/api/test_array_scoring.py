"""The champion compiled for arrays (ml/array_model.py) scores exactly as the pipeline it
comes from, on every kind of input, and models saved before it existed still load."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import skops.io
from threadpoolctl import threadpool_limits

from api.model_store import ChampionStore
from ml import array_model, tree_walk
from ml.array_model import CompiledBoosting, FrameModel, compile_model
from ml.contracts import SeverityModelParams
from ml.data import split_frame
from ml.defaults import PROJECT_ROOT
from ml.models import build_severity_model, fit_severity_model
from ml.registry import SKOPS_TRUSTED_TYPES
from ml.threads import (
    SINGLE_THREAD_MAX_ROWS,
    SINGLE_THREAD_MAX_TRAINING_ROWS,
    available_cores,
    threads_for_rows,
)

OLD_MODELS = PROJECT_ROOT / "tests" / "fixtures" / "models_before_array_scoring.py"
#: A code of the code book the model never sees in training (it must read as missing).
UNSEEN = ("lighting_code", 4)


def varied_rows(spec, rows: int, seed: int) -> np.ndarray:
    """Road users as the API could encode them and worse: every code of the code book,
    codes outside it (0, 99, -1, 2.5, 1e9), numbers in and out of range, NaN everywhere."""
    rng = np.random.default_rng(seed)
    X = np.empty((rows, len(spec.names)))
    for j, feature in enumerate(spec.features):
        if feature.is_categorical:
            X[:, j] = rng.choice([*feature.codes, 0, 99, -1, 2.5, 1e9], size=rows)
        else:
            X[:, j] = rng.uniform(feature.minimum - 10, feature.maximum + 10, size=rows)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[0, :] = np.nan  # a road user with nothing recorded
    return X


@pytest.fixture(scope="module")
def trained(champion, spec):
    """A model with more trees than the champion's, on training data that never holds
    ``UNSEEN``."""
    features = champion.features.copy()
    name, code = UNSEEN
    features.loc[features[name] == code, name] = 1.0
    params = SeverityModelParams(max_iter=40, min_samples_leaf=5, n_iter_no_change=40)
    with threadpool_limits(1):
        return fit_severity_model(
            build_severity_model(spec, params),
            split_frame(features, "train"),
            split_frame(features, "validation"),
            spec,
        )


def categoricals_by_value(X: np.ndarray, spec) -> pd.DataFrame:
    """The frame as ``CodebookTyper`` built it before: ``pd.Categorical(values, categories)``
    (pandas warns that values outside the categories will raise one day)."""
    frame = pd.DataFrame(X, columns=spec.names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for feature in spec.features:
            if feature.is_categorical:
                frame[feature.name] = pd.Categorical(frame[feature.name], categories=sorted(feature.codes))
    return frame


def assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    """To the last bit: the compiled walk adds the same leaves in scikit-learn's order."""
    assert actual.shape == expected.shape
    assert np.array_equal(actual, expected), np.abs(actual - expected).max()


def test_the_compiled_model_scores_as_the_pipeline_on_varied_inputs(trained, spec):
    X = varied_rows(spec, 3_000, seed=1)
    expected = trained.named_steps["model"].predict_proba(categoricals_by_value(X, spec))
    assert_identical(trained.predict_proba(pd.DataFrame(X, columns=spec.names)), expected)
    compiled = compile_model(trained, spec.names)
    assert isinstance(compiled, CompiledBoosting)
    assert compiled.booster.n_iter_ > 5
    assert_identical(compiled.predict_proba(X), expected)
    # One row at a time, as the API scores a single road user.
    for i in range(0, 300, 7):
        assert_identical(compiled.predict_proba(X[i : i + 1]), expected[i : i + 1])
    # The typer's array path gives the pipeline the same frame as the DataFrame path.
    assert_identical(trained.predict_proba(X), expected)


def test_an_unseen_code_and_codes_outside_the_code_book_read_as_missing(trained, spec):
    name, code = UNSEEN
    j = spec.names.index(name)
    X = np.repeat(varied_rows(spec, 50, seed=2), 1, axis=0)
    compiled = compile_model(trained, spec.names)
    missing = X.copy()
    missing[:, j] = np.nan
    for value in (code, 0, 99, -1, 2.5):
        X[:, j] = value
        assert_identical(compiled.predict_proba(X), compiled.predict_proba(missing))


def test_large_batches_split_over_threads_give_the_same_answer(trained, spec, monkeypatch):
    X = varied_rows(spec, 3 * array_model.CHUNK_ROWS + 5, seed=3)
    compiled = compile_model(trained, spec.names)
    monkeypatch.setattr(array_model, "threads_for_rows", lambda rows: 1)
    monkeypatch.setattr(array_model, "CHUNK_ROWS", len(X))
    one_call = compiled.predict_proba(X)  # every row in one walk, on one thread
    monkeypatch.setattr(array_model, "CHUNK_ROWS", 2_048)
    assert_identical(compiled.predict_proba(X), one_call)  # in chunks, one after the other
    monkeypatch.setattr(array_model, "threads_for_rows", lambda rows: 3)
    assert_identical(compiled.predict_proba(X), one_call)  # in chunks on three threads
    assert compiled.predict_proba(X[:0]).shape == (0, 4)


def test_requests_scored_at_once_from_many_threads_each_get_their_own_answer(trained, spec):
    """The API scores each request in a thread of its own: one road user or a few rows at a
    time, many at once."""
    compiled = compile_model(trained, spec.names)
    X = varied_rows(spec, 64, seed=4)
    sizes = [1, 2, 5, 8]
    batches = [X[i : i + sizes[i % 4]] for i in range(len(X) - 8)]
    expected = [compiled.predict_proba(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(compiled.predict_proba, batches * 5))
    for answer, alone in zip(answers, expected * 5, strict=True):
        assert_identical(answer, alone)


def test_the_walk_lets_other_threads_run(trained, spec):
    """The trees are walked without the GIL: a Python thread keeps counting while a large
    batch is scored on one thread (the API's event loop keeps answering /health)."""
    compiled = compile_model(trained, spec.names)
    X = varied_rows(spec, 60_000, seed=7)
    bins = compiled._bins(X)
    baseline = np.repeat(compiled._baseline, len(X), axis=0)
    tree_walk.add_trees(bins[:10], *compiled._trees, baseline[:10].copy())  # compiled before timing
    counts, done = [], threading.Event()

    def count() -> None:
        n = 0
        while not done.is_set():
            n += 1
            if n % 1_000 == 0:
                counts.append(time.perf_counter())

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    tree_walk.add_trees(bins, *compiled._trees, baseline)
    end = time.perf_counter()
    done.set()
    counter.join()
    during = [t for t in counts if start <= t <= end]
    assert end - start > 0.02, "too short a walk to tell"
    # With the GIL held throughout, the counter would be stopped for the whole walk.
    longest_stop = max(np.diff([start, *during, end]))
    assert longest_stop < (end - start) / 2, (longest_stop, end - start)


@pytest.mark.parametrize("rows", [1, 40, 3 * array_model.CHUNK_ROWS + 5])
def test_training_and_evaluation_score_frames_compiled_to_the_last_bit(trained, champion, spec, rows):
    """``class_probabilities`` on a DataFrame (validation, test) compiles a severity model
    first: its probabilities are the pipeline's exactly, not only to 1e-12, so every figure
    training and evaluation report is the one the pipeline would give."""
    from ml.calibration import calibrate_on_validation
    from ml.scoring import class_probabilities

    frame = pd.DataFrame(varied_rows(spec, rows, seed=8), columns=spec.names)
    calibrated, _ = calibrate_on_validation(
        trained, split_frame(champion.features, "validation"), spec, "isotonic"
    )
    for model in (trained, calibrated):
        expected = model.predict_proba(frame)
        assert np.array_equal(class_probabilities(model, frame, [1, 2, 3, 4]), expected)


def test_other_estimators_are_scored_through_a_frame(champion, spec):
    from sklearn.dummy import DummyClassifier

    dummy = DummyClassifier(strategy="prior").fit(np.zeros((4, 1)), [1, 2, 3, 3])
    model = compile_model(dummy, spec.names)
    assert isinstance(model, FrameModel)
    assert model.predict_proba(np.zeros((2, len(spec.names)))).tolist() == [[0.25, 0.25, 0.5]] * 2


def test_the_registered_champion_is_compiled_at_load(champion, spec):
    store = ChampionStore(champion.tracking_uri, spec.names)
    store.refresh()
    assert isinstance(store.model.scorer, CompiledBoosting)
    X = varied_rows(spec, 500, seed=4)
    expected = store.model.estimator.predict_proba(pd.DataFrame(X, columns=spec.names))
    assert_identical(store.model.scorer.predict_proba(X), expected)
    # Columns given in another order are put in the model's order.
    reordered = list(reversed(spec.names))
    scorer = compile_model(store.model.estimator, reordered)
    assert_identical(scorer.predict_proba(X[:, ::-1]), expected)


SAVE_WITH_THE_OLD_CLASS = """
import json, sys
import numpy as np, pandas as pd, skops.io
sys.path.insert(0, sys.argv[1])  # a folder whose ml/models.py is the old one
from ml.models import CodebookTyper, SeverityModelParams
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
import ml.models
assert ml.models.__file__.startswith(sys.argv[1]), ml.models.__file__
assert not hasattr(CodebookTyper, "booster_code_table")
job = json.load(open(sys.argv[2]))
train = pd.read_parquet(job["train"])
typer = CodebookTyper(columns=job["columns"], categories={k: v for k, v in job["categories"].items()})
model = Pipeline([("types", typer), ("model", HistGradientBoostingClassifier(
    max_iter=20, categorical_features="from_dtype", random_state=0))])
model.fit(train[job["columns"]], train["severity"])
skops.io.dump(model, job["model"])
rows = pd.read_parquet(job["rows"])
np.save(job["expected"], model.predict_proba(rows[job["columns"]]))
"""


def test_a_model_saved_with_the_class_before_arrays_loads_and_scores_the_same(champion, spec, tmp_path):
    old = tmp_path / "old" / "ml"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text("")
    (old / "models.py").write_text(OLD_MODELS.read_text())
    rows = pd.DataFrame(varied_rows(spec, 400, seed=5), columns=spec.names)
    champion.features.to_parquet(tmp_path / "train.parquet")
    rows.to_parquet(tmp_path / "rows.parquet")
    job = {
        "columns": spec.names,
        "categories": {f.name: sorted(f.codes) for f in spec.features if f.is_categorical},
        "train": str(tmp_path / "train.parquet"),
        "rows": str(tmp_path / "rows.parquet"),
        "model": str(tmp_path / "model.skops"),
        "expected": str(tmp_path / "expected.npy"),
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run(
        [sys.executable, "-c", SAVE_WITH_THE_OLD_CLASS, str(old.parent), str(tmp_path / "job.json")],
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    untrusted = skops.io.get_untrusted_types(file=job["model"])
    assert set(untrusted) <= set(SKOPS_TRUSTED_TYPES), untrusted
    loaded = skops.io.load(job["model"], trusted=untrusted)
    expected = np.load(job["expected"])
    assert_identical(loaded.predict_proba(rows), expected)  # today's class, the old state
    assert_identical(loaded.predict_proba(rows.to_numpy()), expected)
    assert_identical(compile_model(loaded, spec.names).predict_proba(rows.to_numpy()), expected)


def test_one_thread_for_small_batches_every_core_for_large_ones():
    assert threads_for_rows(1) == threads_for_rows(SINGLE_THREAD_MAX_ROWS) == 1
    assert threads_for_rows(SINGLE_THREAD_MAX_ROWS + 1) == available_cores() >= 1


def test_the_loaded_model_can_be_replaced_for_tests(champion, spec):
    store = ChampionStore(champion.tracking_uri, spec.names)
    store.refresh()
    assert replace(store.model, scorer=None).scorer is None


def test_openmp_is_limited_in_the_calling_thread_by_the_number_of_rows():
    from threadpoolctl import threadpool_info

    from ml.threads import openmp_threads_for_rows

    def openmp_threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}

    if not openmp_threads():
        pytest.skip("no OpenMP runtime loaded")
    with openmp_threads_for_rows(1) as threads:
        assert threads == 1 and openmp_threads() == {1}
    with openmp_threads_for_rows(SINGLE_THREAD_MAX_ROWS + 1) as threads:
        assert threads == available_cores() and openmp_threads() == {available_cores()}
    # A fit synchronises its threads at every split: one thread up to a higher bar.
    with openmp_threads_for_rows(SINGLE_THREAD_MAX_TRAINING_ROWS, training=True) as threads:
        assert threads == 1 and openmp_threads() == {1}
    with openmp_threads_for_rows(SINGLE_THREAD_MAX_TRAINING_ROWS + 1, training=True) as threads:
        assert threads == available_cores()


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_a_calibrated_model_compiles_and_scores_as_the_scikit_learn_object(
    trained, champion, spec, method, tmp_path
):
    """The calibration map follows the pipeline, compiled or not, and survives skops (the
    registry's format) with the registry's trusted types."""
    from ml.calibration import CalibratedSeverityModel, calibrate_on_validation

    validation = split_frame(champion.features, "validation")
    calibrated, report = calibrate_on_validation(trained, validation, spec, method)
    assert isinstance(calibrated, CalibratedSeverityModel) and report["method"] == method
    X = varied_rows(spec, 2_000, seed=6)
    expected = calibrated.predict_proba(pd.DataFrame(X, columns=spec.names))
    assert np.allclose(expected.sum(axis=1), 1.0)
    assert not np.allclose(expected, trained.predict_proba(pd.DataFrame(X, columns=spec.names)))
    compiled = compile_model(calibrated, spec.names)
    assert isinstance(compiled, CompiledBoosting)
    assert_identical(compiled.predict_proba(X), expected)
    assert_identical(compiled.predict_proba(X[:1]), expected[:1])  # one road user, as the API
    skops.io.dump(calibrated, tmp_path / "model.skops")
    loaded = skops.io.load(tmp_path / "model.skops", trusted=SKOPS_TRUSTED_TYPES)
    assert_identical(compile_model(loaded, spec.names).predict_proba(X), expected)
