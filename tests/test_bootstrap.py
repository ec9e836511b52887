"""The bootstrap over accidents (ml/bootstrap.py) against hand-made cases and scikit-learn."""

import numpy as np
import pandas as pd
import pytest

from ml import bootstrap, metrics
from ml.crossval import grouped_folds, whole_accidents
from ml.evaluation import paired_gain_on_test, paired_gains_on_test

CLASSES = [1, 2, 3, 4]


def random_case(rows: int, accidents: int, seed: int):
    """Road users of random accidents, with probabilities that carry some signal and ties."""
    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, accidents, rows)) * 7 + 201600000000
    y = rng.integers(1, 5, rows)
    raw = rng.random((rows, 4)) + 0.6 * np.eye(4)[y - 1]
    raw[: rows // 10] = np.round(raw[: rows // 10], 1)  # tied scores
    return y, raw / raw.sum(axis=1, keepdims=True), groups


def test_with_every_road_user_once_the_vectorised_metrics_are_scikit_learns():
    y, proba, _ = random_case(3_000, 1_500, seed=1)
    expected = metrics.classification_metrics(y, proba, CLASSES)
    actual = bootstrap.point_metrics(y, proba, CLASSES)
    assert actual.keys() == expected.keys() == set(metrics.SCALAR_METRICS)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, abs=1e-12), name


def test_each_resample_is_scikit_learn_on_the_accidents_drawn_with_all_their_road_users():
    y, proba, groups = random_case(800, 300, seed=2)
    accidents = np.unique(groups)
    resampled = bootstrap.resampled_metrics(y, proba, groups, CLASSES, resamples=4, seed=7)
    weights = next(bootstrap.resample_weights(len(accidents), 4, seed=7))
    for r in range(4):
        # The accidents of resample r, each repeated as often as it was drawn, all its rows kept.
        rows = np.repeat(np.arange(len(y)), weights[r][np.searchsorted(accidents, groups)].astype(int))
        expected = metrics.classification_metrics(y[rows], proba[rows], CLASSES)
        for name, value in expected.items():
            assert resampled[name][r] == pytest.approx(value, abs=1e-12), (r, name)


def test_resampling_accidents_is_wider_than_resampling_road_users():
    """Two accidents of three road users: one predicted all right, one all wrong. Drawing two
    accidents gives accuracy 0, 1/2 or 1 (chances 1/4, 1/2, 1/4): the 95% interval is [0, 1].
    Drawing six road users one by one, all wrong or all right has a chance of 1/64 each, under
    2.5%: the interval is [1/6, 5/6], which pretends to know more than the data say."""
    y = np.array([1, 1, 1, 2, 2, 2])
    proba = np.tile([1.0, 0.0, 0.0, 0.0], (6, 1))  # always "unhurt"
    accidents = np.array([201600000001] * 3 + [201600000002] * 3)
    by_accident = bootstrap.resampled_metrics(y, proba, accidents, CLASSES, names=["accuracy"])["accuracy"]
    assert set(np.unique(by_accident)) == {0.0, 0.5, 1.0}
    assert bootstrap.percentile_interval(by_accident) == (0.0, 1.0)
    by_user = bootstrap.resampled_metrics(y, proba, np.arange(6), CLASSES, names=["accuracy"])["accuracy"]
    assert bootstrap.percentile_interval(by_user) == pytest.approx((1 / 6, 5 / 6))


def test_the_same_seed_gives_the_same_intervals_another_seed_others():
    y, proba, groups = random_case(500, 200, seed=3)
    first = bootstrap.metric_intervals(y, proba, groups, CLASSES, resamples=200, seed=11)
    assert bootstrap.metric_intervals(y, proba, groups, CLASSES, resamples=200, seed=11) == first
    assert bootstrap.metric_intervals(y, proba, groups, CLASSES, resamples=200, seed=12) != first
    point = metrics.classification_metrics(y, proba, CLASSES)
    for name, (low, high) in first.items():
        assert low < point[name] < high, name


def test_a_resample_without_a_severe_road_user_has_no_roc_auc_and_is_left_out():
    y = np.array([1, 3, 1, 1])  # one severe road user, in accident 1 only
    proba = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.1, 0.6, 0.1], [0.5, 0.3, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]])
    resampled = bootstrap.resampled_metrics(
        y, proba, [1, 1, 2, 2], CLASSES, resamples=50, names=["severe_roc_auc"]
    )
    values = resampled["severe_roc_auc"]
    assert np.isnan(values).any() and set(values[~np.isnan(values)]) == {1.0}
    assert bootstrap.percentile_interval(values) == (1.0, 1.0)


def test_rows_of_an_accident_outside_those_resampled_are_refused():
    with pytest.raises(ValueError, match="not among those resampled"):
        bootstrap.resampled_metrics([1], np.eye(4)[:1], [5], CLASSES, accidents=np.array([4, 6]))


def test_a_model_against_itself_gains_nothing_and_not_beyond_the_noise():
    from sklearn.dummy import DummyClassifier

    y, proba, groups = random_case(300, 120, seed=4)
    frame = pd.DataFrame({"num_acc": groups, "split": "test", "severity": y, "x": proba[:, 0]})
    spec = type(
        "Spec",
        (),
        {"names": ["x"], "classes": dict.fromkeys(CLASSES), "target": "severity", "key": "num_acc"},
    )
    model = DummyClassifier(strategy="stratified", random_state=0).fit(frame[["x"]], y)
    gain = paired_gain_on_test(model, model, frame, spec, resamples=100)
    assert (gain.gain, gain.low, gain.high, gain.beyond_noise) == (0.0, 0.0, 0.0, False)


def two_models_on_test(seed: int):
    """A test split of random accidents, its specification, a challenger with some signal
    and a champion guessing at random."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    y, proba, groups = random_case(600, 250, seed=seed)
    frame = pd.DataFrame(
        {"num_acc": groups, "split": "test", "severity": y, "x": proba[:, 0], "z": proba[:, 3]}
    )
    spec = type(
        "Spec",
        (),
        {"names": ["x", "z"], "classes": dict.fromkeys(CLASSES), "target": "severity", "key": "num_acc"},
    )
    challenger = LogisticRegression(max_iter=500).fit(frame[["x", "z"]], y)
    champion = DummyClassifier(strategy="stratified", random_state=0).fit(frame[["x", "z"]], y)
    return frame, spec, challenger, champion


def test_gains_of_several_metrics_at_once_are_those_of_each_alone():
    """paired_gains_on_test scores each model once for all metrics, on the same resamples."""
    frame, spec, challenger, champion = two_models_on_test(seed=7)
    both = paired_gains_on_test(
        challenger, champion, frame, spec, ("macro_f1", "severe_roc_auc"), resamples=100
    )
    for metric in ("macro_f1", "severe_roc_auc"):
        assert both[metric] == paired_gain_on_test(challenger, champion, frame, spec, metric, resamples=100)
    assert both["severe_roc_auc"].gain > 0


def test_gains_read_from_an_evaluation_are_those_scored_again():
    """The evaluation keeps each model's resamples, so the newest feature set's gain costs no
    second scoring or bootstrap, and gives the same figures to the last bit."""
    from ml.contracts import MODEL, PREVIOUS_FEATURE_SET
    from ml.evaluation import evaluate_on_test, paired_gains_in_evaluation

    frame, spec, challenger, champion = two_models_on_test(seed=11)
    metric_names = ("macro_f1", "severe_roc_auc")
    evaluation = evaluate_on_test(
        {MODEL: challenger, PREVIOUS_FEATURE_SET: champion}, frame, frame, spec, resamples=100
    )
    assert paired_gains_in_evaluation(evaluation, MODEL, PREVIOUS_FEATURE_SET, metric_names) == (
        paired_gains_on_test(challenger, champion, frame, spec, metric_names, resamples=100)
    )
    without_resamples = evaluate_on_test({MODEL: challenger}, frame, frame, spec, resamples=0)
    with pytest.raises(ValueError, match="no bootstrap resamples"):
        paired_gains_in_evaluation(without_resamples, MODEL, MODEL, metric_names)


def test_the_bootstrap_gives_the_same_values_on_one_thread_or_several(monkeypatch):
    """Chunks of resamples run on threads; the weights are drawn in order, so the values
    do not depend on how many."""
    y, proba, groups = random_case(5_000, 1_500, seed=12)
    on_two = bootstrap.resampled_metrics(y, proba, groups, CLASSES, resamples=120)
    monkeypatch.setattr(bootstrap, "threads_for_rows", lambda rows: 1)
    on_one = bootstrap.resampled_metrics(y, proba, groups, CLASSES, resamples=120)
    monkeypatch.setattr(bootstrap, "threads_for_rows", lambda rows: 3)
    on_three = bootstrap.resampled_metrics(y, proba, groups, CLASSES, resamples=120)
    for name in metrics.SCALAR_METRICS:
        assert np.array_equal(on_one[name], on_two[name], equal_nan=True), name
        assert np.array_equal(on_one[name], on_three[name], equal_nan=True), name


def test_models_resampled_together_get_what_each_gets_alone():
    """The weights are drawn once for every model: the same resamples, so the same values,
    for models on different rows of the same accidents (a baseline reads its own table)."""
    y, proba, groups = random_case(4_000, 1_200, seed=21)
    accidents = np.unique(groups)
    constant = np.tile([0.5, 0.3, 0.15, 0.05], (len(y), 1))  # the majority baseline's ties
    reordered = np.random.default_rng(3).permutation(len(y))
    scored = {
        "model": (y, proba, groups),
        "majority": (y, constant, groups),
        "baseline": (y[reordered], proba[reordered][:, ::-1], groups[reordered]),
    }
    together = bootstrap.resampled_metrics_of_models(scored, CLASSES, accidents, resamples=60, seed=5)
    assert together.keys() == scored.keys()
    for model, (y_m, proba_m, groups_m) in scored.items():
        alone = bootstrap.resampled_metrics(y_m, proba_m, groups_m, CLASSES, accidents, resamples=60, seed=5)
        for name in metrics.SCALAR_METRICS:
            assert np.array_equal(together[model][name], alone[name], equal_nan=True), (model, name)


def test_cross_validation_folds_never_split_an_accident():
    y, _, groups = random_case(2_000, 700, seed=5)
    folds = grouped_folds(groups, y, folds=5, seed=42)
    assert len(folds) == 5
    held_out = np.concatenate([scored for _, scored in folds])
    assert sorted(held_out) == list(range(len(y)))  # each road user scored once
    for fit, scored in folds:
        assert not set(groups[fit]) & set(groups[scored])


def test_the_cross_validation_subsample_keeps_whole_accidents():
    y, _, groups = random_case(2_000, 700, seed=6)
    frame = pd.DataFrame({"num_acc": groups, "severity": y})
    sample = whole_accidents(frame, 500, "num_acc", "severity", seed=42)
    assert 400 < len(sample) < 600
    sizes = frame.groupby("num_acc").size()
    assert (sample.groupby("num_acc").size() == sizes[sample["num_acc"].unique()]).all()
    assert whole_accidents(frame, 5_000, "num_acc", "severity", seed=42) is frame
