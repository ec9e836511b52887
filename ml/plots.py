"""The pictures of an evaluation, as matplotlib figures (saved as PNG artifacts)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: figures go to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402


def confusion_matrix_figure(matrix: np.ndarray, labels: list[str], title: str) -> plt.Figure:
    """Counts, with each cell's share of its true class (the recall) in brackets."""
    recall = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:,}\n({recall[i, j]:.0%})",
                ha="center",
                va="center",
                color="white" if recall[i, j] > 0.6 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted severity")
    ax.set_ylabel("true severity")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true class")
    fig.tight_layout()
    return fig


def feature_importance_figure(importance: pd.DataFrame, title: str, top: int = 20) -> plt.Figure:
    """Horizontal bars of mean permutation importance with its standard deviation."""
    data = importance.sort_values("importance_mean").tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(data) + 1.5))
    ax.barh(data.index, data["importance_mean"], xerr=data["importance_std"], color="#4C72B0")
    ax.set_xlabel("drop in validation macro-F1 when the feature is shuffled")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def contribution_importance_figure(importance: pd.DataFrame, title: str, top: int = 20) -> plt.Figure:
    """Horizontal bars of mean |contribution| to P(severe) (``ml.explain.global_importance``),
    coloured by the sign of the mean contribution (red: it raises P(severe) on average)."""
    data = importance.sort_values("mean_abs_contribution").tail(top)
    colours = np.where(data["mean_contribution"] > 0, "#C44E52", "#4C72B0")
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(data) + 1.5))
    ax.barh(data.index, data["mean_abs_contribution"], color=colours)
    ax.set_xlabel("mean |change in P(severe)| when set to the reference road user (points)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def calibration_figure(
    y_true, proba: np.ndarray, classes: list[int], labels: list[str], title: str
) -> plt.Figure:
    """Reliability curve of each class, one against the rest."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    y_true = np.asarray(y_true)
    for index, (code, label) in enumerate(zip(classes, labels, strict=True)):
        observed, predicted = calibration_curve(
            y_true == code, proba[:, index], n_bins=10, strategy="quantile"
        )
        ax.plot(predicted, observed, marker="o", label=label)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
