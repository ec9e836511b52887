"""The champion compiled for arrays (ml/array_model.py, ml/compiled_model.py) scores exactly
as the pipeline it comes from, on every kind of input, from its stored file too (the API
serves it without scikit-learn), and models saved before it existed still load."""

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
from ml import compiled_model, tree_walk
from ml.array_model import CompiledBoosting, FrameModel, compile_model
from ml.compiled_model import CompiledTrees
from ml.contracts import SeverityModelParams
from ml.data import split_frame
from ml.defaults import PROJECT_ROOT
from ml.models import build_severity_model, fit_severity_model
from ml.registry import REGISTERED_MODEL, SKOPS_TRUSTED_TYPES, read_compiled_model
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
        ).pipeline


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
    assert trained.named_steps["model"].n_iter_ > 5
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
    X = varied_rows(spec, 3 * compiled_model.CHUNK_ROWS + 5, seed=3)
    compiled = compile_model(trained, spec.names)
    monkeypatch.setattr(compiled_model, "threads_for_rows", lambda rows: 1)
    monkeypatch.setattr(compiled_model, "CHUNK_ROWS", len(X))
    one_call = compiled.predict_proba(X)  # every row in one walk, on one thread
    monkeypatch.setattr(compiled_model, "CHUNK_ROWS", 2_048)
    assert_identical(compiled.predict_proba(X), one_call)  # in chunks, one after the other
    monkeypatch.setattr(compiled_model, "threads_for_rows", lambda rows: 3)
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


@pytest.mark.parametrize("rows", [1, 40, 3 * compiled_model.CHUNK_ROWS + 5])
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


def test_the_registered_champion_is_served_from_its_compiled_trees(champion, spec):
    """The training run stores the champion compiled (``ml.compiled_model``): the API reads
    those arrays, not the scikit-learn object, and scores as the pipeline to the last bit,
    in whatever order its columns come."""
    import mlflow.sklearn

    store = ChampionStore(champion.tracking_uri, spec.names)
    store.refresh()
    assert isinstance(store.model.scorer, CompiledTrees) and store.model.estimator is None
    source = store.client.get_model_version_download_uri(REGISTERED_MODEL, store.model.version)
    pipeline = mlflow.sklearn.load_model(source)
    X = varied_rows(spec, 500, seed=4)
    expected = pipeline.predict_proba(pd.DataFrame(X, columns=spec.names))
    assert_identical(store.model.scorer.predict_proba(X), expected)
    assert_identical(store.model.scorer.predict_proba(X[:1]), expected[:1])
    # Columns given in another order are put in the model's order, from the file or compiled here.
    reordered = list(reversed(spec.names))
    other = ChampionStore(champion.tracking_uri, reordered)
    other.refresh()
    assert_identical(other.model.scorer.predict_proba(X[:, ::-1]), expected)
    assert_identical(compile_model(pipeline, reordered).predict_proba(X[:, ::-1]), expected)


def test_compiled_trees_are_served_only_for_the_model_they_come_from(champion, spec):
    from mlflow import MlflowClient

    from ml.contracts import MODEL

    client = MlflowClient(tracking_uri=champion.tracking_uri)
    run_id, uri = champion.record.run_id, champion.record.model_uris[MODEL]
    assert read_compiled_model(client, run_id, uri, spec.names) is not None
    assert read_compiled_model(client, run_id, "models:/m-another-model", spec.names) is None
    with pytest.raises(ValueError, match="features the rows do not have"):
        read_compiled_model(client, run_id, uri, spec.names[1:])


def test_a_version_stored_without_compiled_trees_is_compiled_at_load(champion_without_reference, spec):
    """A version registered before the compiled trees were stored: the API loads the
    scikit-learn object and compiles it, with the same probabilities."""
    store = ChampionStore(champion_without_reference, spec.names)
    store.refresh()
    assert isinstance(store.model.scorer, CompiledBoosting) and store.model.estimator is not None
    X = varied_rows(spec, 300, seed=9)
    expected = store.model.estimator.predict_proba(pd.DataFrame(X, columns=spec.names))
    assert_identical(store.model.scorer.predict_proba(X), expected)


SERVE_WITHOUT_SCIKIT_LEARN = """
import sys
import numpy as np
import api.main  # the whole service, as uvicorn imports it
from api.model_store import ChampionStore
from ml.defaults import DBT_PROJECT_DIR
from ml.features import load_feature_spec
store = ChampionStore(sys.argv[1], load_feature_spec(DBT_PROJECT_DIR).names)
store.refresh()
np.save(sys.argv[3], store.model.scorer.predict_proba(np.load(sys.argv[2])))
print(",".join(m for m in ("sklearn", "skops", "scipy.stats") if m in sys.modules))
"""


def test_the_service_loads_and_scores_its_champion_without_scikit_learn(champion, spec, tmp_path):
    """What a service process imports to start and score: neither scikit-learn (and SciPy's
    statistics with it) nor skops, which took 2.3 s of a start with the national champion."""
    X = varied_rows(spec, 200, seed=10)
    np.save(tmp_path / "rows.npy", X)
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SCIKIT_LEARN, champion.tracking_uri]
        + [str(tmp_path / "rows.npy"), str(tmp_path / "proba.npy")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"the service imported {done.stdout.strip()}"
    store = ChampionStore(champion.tracking_uri, spec.names)
    store.refresh()
    assert_identical(np.load(tmp_path / "proba.npy"), store.model.scorer.predict_proba(X))


def test_a_two_class_model_compiles_and_scores_as_the_pipeline(champion, spec, tmp_path):
    """Two classes: one raw score per row and the logistic function instead of the softmax."""
    train = split_frame(champion.features, "train")
    model = build_severity_model(spec, SeverityModelParams(max_iter=15, min_samples_leaf=5))
    model.set_params(model__early_stopping=False)
    with threadpool_limits(1):
        model.fit(train[spec.names], np.where(train[spec.target] >= 3, 3, 1))
    X = varied_rows(spec, 500, seed=11)
    expected = model.predict_proba(pd.DataFrame(X, columns=spec.names))
    compiled = compile_model(model, spec.names)
    assert isinstance(compiled, CompiledBoosting)
    assert_identical(compiled.predict_proba(X), expected)
    compiled.write(tmp_path / "model.npz")
    assert_identical(CompiledTrees.read(tmp_path / "model.npz", spec.names)[0].predict_proba(X), expected)


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
    # Its file, as the API reads it: the map comes with the trees.
    compiled.write(tmp_path / "model.npz", "models:/m-1")
    read, model_uri = CompiledTrees.read(tmp_path / "model.npz", spec.names)
    assert model_uri == "models:/m-1" and read.calibration.method == method
    assert_identical(read.predict_proba(X), expected)


def test_the_predicted_class_is_the_softmaxs_argmax_even_where_scores_nearly_tie():
    """``predicted_columns`` takes a row's class from its raw scores, and from the softmax
    (computed as scikit-learn computes it) where scores are close enough for their
    probabilities to round alike, or not finite: it must give the softmax's argmax for
    every row."""
    from ml.compiled_model import NEAR_TIE, link_inverse, predicted_columns

    def agree(raw):
        raw = np.asarray(raw, dtype=np.float64)
        return (predicted_columns(raw) == link_inverse(raw).argmax(axis=1)).all()

    one_ulp = np.nextafter(0.25, 1.0)
    assert agree(
        [
            [0.1, 2.0, -1.0, 0.5],  # a clear winner
            [1.0, 1.0, 0.0, 0.0],  # an exact tie: the first, as NumPy's argmax
            [0.25, one_ulp, 0.0, 0.0],  # one rounding apart: the softmax makes them equal
            [3.0, 3.0 - NEAR_TIE / 2, 3.0 + NEAR_TIE * 10, 0.0],  # the third clearly above
            [5.0, 5.0, 5.0, 5.0],
            [0.0, np.nan, 1.0, 0.0],  # not finite: the softmax's answer, whatever it is
            [0.0, 0.0, np.inf, 0.0],
            [-np.inf, 0.0, 1.0, 0.0],
        ]
    )
    # Scores 1 to 64 roundings apart, around tops of several sizes and either way round.
    rows = []
    for top in (0.5, 3.0, 40.0, -7.0, 1e3):
        for gap in range(1, 65):
            close = top - gap * np.spacing(top)
            rows += [[top, close, top - 5, top - 6], [close, top, top - 6, top - 5]]
    assert agree(rows)
    rng = np.random.default_rng(0)
    assert agree(np.round(rng.normal(size=(20_000, 4)), 2))  # rounded: many exact ties
    assert agree(rng.normal(size=(1_000, 1)))  # two classes: the logistic function
