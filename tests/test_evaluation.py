"""Metric functions against small cases computed by hand."""

import numpy as np
import pytest

from ml import metrics as evaluation

CLASSES = [1, 2, 3, 4]


def one_hot(predicted: list[int]) -> np.ndarray:
    proba = np.zeros((len(predicted), 4))
    for row, code in enumerate(predicted):
        proba[row, CLASSES.index(code)] = 1.0
    return proba


def test_perfect_predictions_score_one():
    y = [1, 2, 3, 4, 1, 3]
    result = evaluation.classification_metrics(y, one_hot(y), CLASSES)
    for name in (
        "macro_f1",
        "weighted_f1",
        "accuracy",
        "balanced_accuracy",
        "roc_auc_ovr_macro",
        "severe_roc_auc",
        "severe_average_precision",
    ):
        assert result[name] == pytest.approx(1.0), name
    assert result["log_loss"] == pytest.approx(0.0, abs=1e-9)


def test_hand_computed_case():
    # true:      1 1 2 3 4 4
    # predicted: 1 2 2 3 3 4
    y_true = [1, 1, 2, 3, 4, 4]
    proba = one_hot([1, 2, 2, 3, 3, 4])
    result = evaluation.classification_metrics(y_true, proba, CLASSES)
    # per class F1: 1 -> P 1, R 1/2 -> 2/3; 2 -> P 1/2, R 1 -> 2/3;
    #               3 -> P 1/2, R 1 -> 2/3; 4 -> P 1, R 1/2 -> 2/3
    assert result["macro_f1"] == pytest.approx(2 / 3)
    assert result["weighted_f1"] == pytest.approx(2 / 3)
    assert result["accuracy"] == pytest.approx(4 / 6)
    # recalls 1/2, 1, 1, 1/2
    assert result["balanced_accuracy"] == pytest.approx(0.75)
    per_class = evaluation.per_class_metrics(y_true, proba, CLASSES)
    assert per_class[1] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert per_class[3]["precision"] == 0.5
    assert evaluation.confusion(y_true, proba, CLASSES).tolist() == [
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 1, 1],
    ]


def test_severe_view_sums_hospitalised_and_killed():
    proba = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4], [0.2, 0.2, 0.5, 0.1]])
    assert evaluation.severe_probability(proba, CLASSES).tolist() == pytest.approx([0.2, 0.8, 0.6])
    # severe truth: no, yes, no -> scores 0.2, 0.8, 0.6: the severe row ranks first -> AUC 1, AP 1
    result = evaluation.classification_metrics([1, 4, 2], proba, CLASSES)
    assert result["severe_roc_auc"] == 1.0
    assert result["severe_average_precision"] == 1.0
    # log loss: -(ln 0.5 + ln 0.4 + ln 0.2) / 3
    assert result["log_loss"] == pytest.approx(-(np.log(0.5) + np.log(0.4) + np.log(0.2)) / 3)


def test_majority_class_has_chance_level_ranking():
    y_true = [3, 3, 3, 1, 2, 4]
    result = evaluation.classification_metrics(y_true, one_hot([3] * 6), CLASSES)
    assert result["balanced_accuracy"] == pytest.approx(0.25)
    assert result["severe_roc_auc"] == pytest.approx(0.5)
    # F1 of class 3 = 2 * 0.5 * 1 / 1.5 = 2/3; others 0
    assert result["macro_f1"] == pytest.approx((2 / 3) / 4)


def test_macro_f1_weighs_every_class_alike_unlike_weighted_f1():
    """Eight unhurt predicted right, one killed missed: weighted-F1 hides the miss, macro
    does not (the reason macro-F1 is the primary metric)."""
    y_true = [1] * 8 + [4, 4]
    proba = one_hot([1] * 8 + [1, 4])
    result = evaluation.classification_metrics(y_true, proba, CLASSES)
    # class 1: P 8/9, R 1 -> F1 16/17; class 4: P 1, R 1/2 -> F1 2/3; classes 2 and 3 absent (0).
    assert result["weighted_f1"] == pytest.approx((8 * 16 / 17 + 2 * 2 / 3) / 10)
    assert result["macro_f1"] == pytest.approx((16 / 17 + 2 / 3) / 4)
    assert result["macro_f1"] < result["weighted_f1"] - 0.4


def test_expected_calibration_error_is_zero_when_events_happen_as_often_as_predicted():
    # Bin [0.2, 0.267): four rows at 0.25, one of them true. Bin [0.733, 0.8): four at 0.75, three true.
    probability = [0.25] * 4 + [0.75] * 4
    outcome = [1, 0, 0, 0] + [1, 1, 1, 0]
    assert evaluation.expected_calibration_error(probability, outcome) == pytest.approx(0.0, abs=1e-15)


def test_expected_calibration_error_of_a_confident_and_wrong_model():
    # Always 90% sure, never right: |0.9 - 0| over every row.
    assert evaluation.expected_calibration_error([0.9] * 5, [0] * 5) == pytest.approx(0.9)
    # Half the rows said 0.1 and happened (gap 0.9), half said 0.5 and half happened (gap 0):
    # the rows' shares weigh the gaps.
    probability, outcome = [0.1, 0.1, 0.5, 0.5], [1, 1, 1, 0]
    assert evaluation.expected_calibration_error(probability, outcome) == pytest.approx(0.5 * 0.9)


def test_top_label_and_severe_calibration_errors():
    y_true = [1, 1, 3, 4]
    # Sure and right: no error on the top label.
    assert evaluation.top_label_ece(y_true, one_hot(y_true), CLASSES) == pytest.approx(0.0)
    # Sure and always wrong: the whole confidence is the error.
    assert evaluation.top_label_ece(y_true, one_hot([2, 2, 1, 1]), CLASSES) == pytest.approx(1.0)
    # P(severe) 0.8 for each of the four road users, two of them severe: |0.8 - 0.5| = 0.3.
    proba = np.tile([0.1, 0.1, 0.4, 0.4], (4, 1))
    result = evaluation.classification_metrics(y_true, proba, CLASSES)
    assert result["severe_ece"] == pytest.approx(0.3)
    # Top label: "hospitalised" (the first of the two at 0.4), right once in four: |0.4 - 0.25|.
    assert result["top_label_ece"] == pytest.approx(0.15)


def test_the_feature_set_gain_says_whether_it_is_beyond_the_noise():
    from orchestration.report import feature_set_gain_lines

    key = "test_{}_gain_over_previous_feature_set"
    evaluation = {
        key.format("macro_f1"): 0.0274,
        key.format("macro_f1") + "_ci_low": -0.006,
        key.format("macro_f1") + "_ci_high": 0.06,
        key.format("severe_roc_auc"): 0.0169,
        key.format("severe_roc_auc") + "_ci_low": 0.003,
        key.format("severe_roc_auc") + "_ci_high": 0.031,
    }
    assert feature_set_gain_lines(evaluation) == [
        "  macro-F1 +0.0274 [-0.0060, +0.0600]: within the noise",
        "  severe ROC-AUC +0.0169 [+0.0030, +0.0310]: beyond the noise",
    ]
    assert feature_set_gain_lines({}) == []  # a run without the comparison model
