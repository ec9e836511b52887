"""The out-of-time cut (ml/out_of_time.py): newest period against older data, never an
accident on both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features import load_feature_spec
from ml.out_of_time import choose_cut, same_configuration, split_by_cut
from orchestration import settings

SPEC = load_feature_spec(settings.DBT_PROJECT_DIR)


def accidents(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """Two road users per accident ``(num_acc, month)``."""
    return pd.DataFrame(
        [{SPEC.key: num_acc, "month": float(month)} for num_acc, month in rows for _ in range(2)]
    )


def test_several_years_cut_at_the_newest_year():
    frame = accidents([(201400000001, 12), (201500000001, 3), (201600000001, 1), (201600000002, 11)])
    cut = choose_cut(frame, SPEC)
    assert (cut.kind, cut.year) == ("year", 2016)
    assert cut.description == "2016 scored by a model trained on 2014-2015"
    older, newest = split_by_cut(frame, SPEC, cut)
    assert sorted(newest[SPEC.key].unique()) == [201600000001, 201600000002]
    assert sorted(older[SPEC.key].unique()) == [201400000001, 201500000001]


def test_one_year_cut_at_its_last_quarter_of_months_present():
    frame = accidents([(201600000000 + m, m) for m in range(1, 13)])
    cut = choose_cut(frame, SPEC)
    assert (cut.kind, cut.year, cut.month) == ("months", 2016, 10)
    assert cut.description == "one year only: 2016 months 10-12 scored by a model trained on months 1-9"
    older, newest = split_by_cut(frame, SPEC, cut)
    assert older["month"].max() == 9 and newest["month"].min() == 10
    assert len(older) + len(newest) == len(frame)


def test_a_partial_year_is_cut_at_the_last_three_months_it_holds():
    frame = accidents([(201600000000 + m, m) for m in (1, 2, 3, 4, 5)])
    assert choose_cut(frame, SPEC).month == 3
    two_months = accidents([(201600000001, 1), (201600000002, 2)])
    assert choose_cut(two_months, SPEC).month == 2  # at least one month on each side


def test_a_single_month_has_no_out_of_time_cut():
    assert choose_cut(accidents([(201600000001, 4), (201600000002, 4)]), SPEC) is None


@pytest.mark.parametrize("seed", range(5))
def test_no_accident_is_on_both_sides_of_the_cut(seed):
    rng = np.random.default_rng(seed)
    rows = [
        (int(y) * 100_000_000 + i, int(rng.integers(1, 13)))
        for i, y in enumerate(rng.integers(2015, 2017, 300))
    ]
    frame = accidents(rows)
    for data in (frame, frame[frame[SPEC.key] // 100_000_000 == 2016]):
        older, newest = split_by_cut(data, SPEC, choose_cut(data, SPEC))
        assert not set(older[SPEC.key]) & set(newest[SPEC.key])
        assert len(older) + len(newest) == len(data)


def test_a_capped_side_is_the_stratified_sample_of_the_whole_side():
    """The rows are chosen before they are copied (the evaluation's memory), and are the
    rows that sampling the copied side would have given."""
    from ml.training import stratified_rows

    rng = np.random.default_rng(3)
    frame = accidents([(201500000000 + i, int(rng.integers(1, 13))) for i in range(400)])
    frame[SPEC.target] = rng.integers(1, 5, len(frame))
    cut = choose_cut(frame, SPEC)
    older, newest = split_by_cut(frame, SPEC, cut)
    capped_older, capped_newest = split_by_cut(frame, SPEC, cut, max_older=300, max_newest=50, seed=7)
    pd.testing.assert_frame_equal(capped_older, stratified_rows(older, 300, SPEC.target, 7))
    pd.testing.assert_frame_equal(capped_newest, stratified_rows(newest, 50, SPEC.target, 7))
    assert abs(len(capped_older) - 300) <= 4 and abs(len(capped_newest) - 50) <= 4
    assert split_by_cut(frame, SPEC, cut, max_older=10**6)[0].equals(older)  # small enough: all


def test_the_out_of_time_model_has_the_challengers_configuration_with_its_iterations_fixed():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    fitted = Pipeline(
        [
            (
                "model",
                HistGradientBoostingClassifier(
                    max_iter=500, learning_rate=0.05, early_stopping=True, n_iter_no_change=3
                ),
            )
        ]
    )
    x = np.arange(200, dtype=float).reshape(-1, 1)
    fitted.fit(x, (x[:, 0] > 100).astype(int))
    copy = same_configuration(fitted).named_steps["model"]
    assert copy.max_iter == fitted.named_steps["model"].n_iter_ < 500
    assert copy.early_stopping is False and copy.learning_rate == 0.05


def test_make_run_summary_states_the_cut_and_the_figures():
    from orchestration.report import out_of_time_lines

    robustness = {
        "oot_cut": "one year only: 2016 months 10-12 scored by a model trained on months 1-9",
        "oot_macro_f1": 0.41234,
        "oot_severe_roc_auc": 0.8,
    }
    assert out_of_time_lines(robustness) == [
        "Out-of-time (one year only: 2016 months 10-12 scored by a model trained on months 1-9):",
        "  macro-F1 0.4123, severe ROC-AUC 0.8000 (promotion uses the test split)",
    ]
    assert out_of_time_lines({"oot_cut": "none: the data holds a single month"}) == [
        "Out-of-time (none: the data holds a single month):"
    ]
    assert out_of_time_lines({}) == []
