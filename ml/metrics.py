"""Metrics of a severity model: pure functions of true classes and predicted probabilities."""

from __future__ import annotations

import numpy as np
from sklearn import metrics

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
)


def predicted_classes(proba: np.ndarray, classes: list[int]) -> np.ndarray:
    """The most probable class of each row."""
    return np.asarray(classes)[np.argmax(proba, axis=1)]


def severe_probability(proba: np.ndarray, classes: list[int]) -> np.ndarray:
    """P(hospitalised or killed) = the sum of the severe classes' probabilities."""
    columns = [classes.index(c) for c in SEVERE_CLASSES]
    return proba[:, columns].sum(axis=1)


def classification_metrics(y_true, proba: np.ndarray, classes: list[int]) -> dict[str, float]:
    """Every scalar metric we report, for probabilities ``proba`` (columns = ``classes``)."""
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
    }
    return {name: float(result[name]) for name in SCALAR_METRICS}


def per_class_metrics(y_true, proba: np.ndarray, classes: list[int]) -> dict[int, dict[str, float]]:
    """Precision, recall, F1 and support of each class."""
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, predicted_classes(proba, classes), labels=classes, zero_division=0
    )
    return {
        c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }


def confusion(y_true, proba: np.ndarray, classes: list[int]) -> np.ndarray:
    """Confusion matrix: rows are true classes, columns predicted, in ``classes`` order."""
    return metrics.confusion_matrix(y_true, predicted_classes(proba, classes), labels=classes)


def metrics_table(metrics_by_model: dict[str, dict[str, float]]) -> str:
    """Markdown: the headline metrics of each model, one row per model."""
    header = "| model | " + " | ".join(HEADLINE_METRICS) + " |"
    lines = [header, "|---" * (len(HEADLINE_METRICS) + 1) + "|"]
    for name, values in metrics_by_model.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in HEADLINE_METRICS) + " |")
    return "\n".join(lines)
