"""Metrics of a severity model: pure functions of true classes and predicted probabilities.

scikit-learn's metrics are imported in the functions that use them: the API imports this
module for ``predicted_classes`` and ``severe_probability`` and never loads scikit-learn
(``ml.compiled_model``)."""

from __future__ import annotations

import numpy as np

from ml.baac import SEVERE_CLASSES

HEADLINE_METRICS = ("macro_f1", "balanced_accuracy", "severe_roc_auc")
#: Every scalar metric classification_metrics reports (logged as test_<name>).
SCALAR_METRICS = (
    "macro_f1",
    "weighted_f1",
    "accuracy",
    "balanced_accuracy",
    "roc_auc_ovr_macro",
    "log_loss",
    "severe_roc_auc",
    "severe_average_precision",
    "top_label_ece",
    "severe_ece",
)
#: Metrics where lower is better (the others: higher is better).
LOWER_IS_BETTER = ("log_loss", "top_label_ece", "severe_ece")
#: Equal-width probability bins of the expected calibration error.
ECE_BINS = 15


def predicted_classes(proba: np.ndarray, classes: list[int]) -> np.ndarray:
    """The most probable class of each row."""
    return np.asarray(classes)[np.argmax(proba, axis=1)]


def severe_probability(proba: np.ndarray, classes: list[int]) -> np.ndarray:
    """P(hospitalised or killed) = the sum of the severe classes' probabilities."""
    columns = [classes.index(c) for c in SEVERE_CLASSES]
    return proba[:, columns].sum(axis=1)


def classification_metrics(y_true, proba: np.ndarray, classes: list[int]) -> dict[str, float]:
    """Every scalar metric we report, for probabilities ``proba`` (columns = ``classes``)."""
    from sklearn import metrics

    y_true = np.asarray(y_true)
    y_pred = predicted_classes(proba, classes)
    is_severe = np.isin(y_true, SEVERE_CLASSES)
    p_severe = severe_probability(proba, classes)
    result = {
        "macro_f1": metrics.f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
        "weighted_f1": metrics.f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0),
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
        "roc_auc_ovr_macro": metrics.roc_auc_score(
            y_true, proba, multi_class="ovr", average="macro", labels=classes
        ),
        "log_loss": metrics.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes),
        "severe_roc_auc": metrics.roc_auc_score(is_severe, p_severe),
        "severe_average_precision": metrics.average_precision_score(is_severe, p_severe),
        "top_label_ece": top_label_ece(y_true, proba, classes),
        "severe_ece": expected_calibration_error(p_severe, is_severe),
    }
    return {name: float(result[name]) for name in SCALAR_METRICS}


def calibration_bins(probability: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The equal-width bin of each probability: [0, 1/bins), ..., [1 - 1/bins, 1]."""
    return np.minimum((np.asarray(probability, dtype=np.float64) * bins).astype(np.intp), bins - 1)


def expected_calibration_error(probability, outcome, bins: int = ECE_BINS) -> float:
    """How far predicted probabilities are from observed frequencies: over equal-width bins
    of ``probability``, the share of rows in the bin times |mean probability - share of
    ``outcome`` true|. 0 when every bin's rows happen as often as predicted."""
    probability = np.asarray(probability, dtype=np.float64)
    gap = np.bincount(
        calibration_bins(probability, bins),
        weights=probability - np.asarray(outcome, dtype=np.float64),
        minlength=bins,
    )
    return float(np.abs(gap).sum() / max(len(probability), 1))


def top_label_ece(y_true, proba: np.ndarray, classes: list[int], bins: int = ECE_BINS) -> float:
    """Expected calibration error of the predicted class: does a road user given "light
    injury, 60%" have that injury 60% of the time?"""
    return expected_calibration_error(
        proba.max(axis=1), predicted_classes(proba, classes) == np.asarray(y_true), bins
    )


def per_class_metrics(y_true, proba: np.ndarray, classes: list[int]) -> dict[int, dict[str, float]]:
    """Precision, recall, F1 and support of each class."""
    from sklearn import metrics

    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, predicted_classes(proba, classes), labels=classes, zero_division=0
    )
    return {
        c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }


def confusion(y_true, proba: np.ndarray, classes: list[int]) -> np.ndarray:
    """Confusion matrix: rows are true classes, columns predicted, in ``classes`` order."""
    from sklearn import metrics

    return metrics.confusion_matrix(y_true, predicted_classes(proba, classes), labels=classes)


def metrics_table(
    metrics_by_model: dict[str, dict[str, float]],
    intervals: dict[str, dict[str, tuple[float, float]]] | None = None,
) -> str:
    """Markdown: the headline metrics of each model, one row per model, each followed by
    its 95% interval in brackets when ``intervals`` has it."""
    header = "| model | " + " | ".join(HEADLINE_METRICS) + " |"
    lines = [header, "|---" * (len(HEADLINE_METRICS) + 1) + "|"]
    intervals = intervals or {}
    for name, values in metrics_by_model.items():
        cells = []
        for metric in HEADLINE_METRICS:
            cell = f"{values[metric]:.4f}"
            if metric in intervals.get(name, {}):
                low, high = intervals[name][metric]
                cell += f" [{low:.4f}, {high:.4f}]"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
