"""How sure a test figure is: a bootstrap over accidents, vectorised with NumPy.

The split keeps each accident whole, so the accident is the unit of sampling: a resample
draws as many accidents as the test split holds, with replacement, and keeps all their road
users (road users of one crash share its conditions and outcome, so resampling them one by
one would understate the noise). A resample is then a weight per accident (how many times it
was drawn), and every metric of ``ml.metrics.classification_metrics`` is computed for a chunk
of resamples at once from weighted sums: a confusion matrix per resample for the F1 scores
and accuracies, weighted rank statistics for ROC-AUC and average precision, binned sums for
the calibration errors. With weights of 1 they are exactly the point estimates
(``tests/test_bootstrap.py``). Measured on a national-size test split (390,000 road users of
156,000 accidents, scores drawn at random: a timing, not a result) alone on a 2-core
machine, 100 resamples of one model cost 0.2 s of CPU for macro-F1 alone and 1.8 s for all
ten metrics (3.0 s before ``_Ranks`` kept its sums by score and keyed the negatives by the
positives' scores), most of it in the six rank metrics (ROC-AUCs, average precision);
calling scikit-learn once per resample would cost about a second per resample and metric.
``resamples`` is a setting (the evaluation's ``bootstrap_resamples``).

Resamples depend only on the seed and on the sorted accident keys, so two models scored on
the same test accidents are resampled alike: their difference is a paired bootstrap.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

import numpy as np
from scipy import sparse

from ml import metrics
from ml.baac import SEVERE_CLASSES
from ml.contracts import BOOTSTRAP_RESAMPLES
from ml.threads import threads_for_rows

K = TypeVar("K")

SEED = 42
CONFIDENCE = 0.95
#: Resamples computed together: bounds memory (a few arrays of chunk x distinct scores).
CHUNK = 25
#: Clipping of probabilities before the log, as ``metrics.classification_metrics`` then
#: scikit-learn's ``log_loss`` do.
_LOG_FLOOR, _EPS = 1e-15, np.finfo(np.float64).eps


def resample_weights(n_groups: int, resamples: int, seed: int, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Chunks of (resamples x groups) weights: how often each group was drawn when drawing
    ``n_groups`` of them with replacement.

    In Fortran order, so that ``weights.T``, the operand of every sparse product here, is
    contiguous: scipy copies a strided operand first, which made a national one-vs-rest
    product take 10-14 ms instead of 2 ms."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, n_groups, size=(size, n_groups)) + np.arange(size)[:, None] * n_groups
        counts = np.bincount(draws.ravel(), minlength=size * n_groups).reshape(size, n_groups)
        yield np.asfortranarray(counts, dtype=np.float64)


class _GroupSums:
    """Per resample, the sum over rows of a value per row, each row weighted by its group's
    weight: ``S @ weights.T`` with S the (columns x groups) sparse sum of rows by group."""

    def __init__(self, group_index: np.ndarray, n_groups: int):
        self.group_index = group_index
        self.n_groups = n_groups

    def matrix(self, columns: np.ndarray, n_columns: int, values: np.ndarray | None = None):
        values = np.ones(len(columns)) if values is None else values
        return sparse.csr_matrix((values, (columns, self.group_index)), shape=(n_columns, self.n_groups))

    @staticmethod
    def apply(matrix, weights: np.ndarray) -> np.ndarray:
        """(columns x resamples): each column's weighted sum in each resample."""
        return np.asarray(matrix @ weights.T)


#: Each thread's last ``_Ranks.at``: ((structure, weights), result).
_LAST_RANKS = threading.local()


class _Ranks:
    """Weighted rank statistics of a binary outcome against a score, per resample: for each
    distinct score of a positive row, the positives' weight there, and the negatives'
    weight below it and tied with it. Every array is (scores x resamples): the layout of the
    sparse products, so that summing along the scores and gathering a score's resamples read
    contiguous memory."""

    def __init__(self, outcome: np.ndarray, score: np.ndarray, sums: _GroupSums):
        _, level = np.unique(score, return_inverse=True)
        positive, groups, n = np.asarray(outcome, dtype=bool), sums.group_index, sums.n_groups
        self.rows = int(max(positive.sum(), (~positive).sum()))
        positive_key, negative_key = self._keys(level[positive], level[~positive])
        self.positive_counts, positive_keys = self._level_sums(positive_key, groups[positive], n)
        self.negative_counts, negative_keys = self._level_sums(negative_key, groups[~positive], n)
        # For each positive key: how many negative keys lie strictly below (negatives scored
        # below that positive score), and whether one is tied with it.
        self.below = np.searchsorted(negative_keys, positive_keys, side="left")
        self.tied = np.searchsorted(negative_keys, positive_keys, side="right") > self.below

    @staticmethod
    def _keys(positive_level: np.ndarray, negative_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores as keys in which only the comparison with a positive's score is kept: the
        b-th distinct positive score is 2b + 1; a negative tied with it is 2b + 1 too, one
        between the (b-1)-th and the b-th is 2b. The rank statistics read the negatives only
        below or tied with a positive score, so they are the same, but the negatives have at
        most as many distinct keys as the positives, not one per score: on a national test
        split, the killed one-vs-rest sums about 20,000 keys instead of 390,000 scores
        (summing along them dominates the bootstrap)."""
        distinct = np.unique(positive_level)
        gap = np.searchsorted(distinct, negative_level, side="left")
        tied = distinct[np.minimum(gap, len(distinct) - 1)] == negative_level if len(distinct) else False
        return 2 * np.searchsorted(distinct, positive_level) + 1, 2 * gap + tied

    @staticmethod
    def _level_sums(
        level: np.ndarray, groups: np.ndarray, n_groups: int
    ) -> tuple[sparse.csr_matrix, np.ndarray]:
        """The (distinct levels x groups) count of rows, and the distinct levels, ascending:
        a level's weight in a resample is one sparse product, whose cost is the number of
        distinct (level, accident) pairs, not of rows (a baseline's constant score: one
        level, a product 8 times cheaper than a cumulative sum over its rows)."""
        distinct, index = np.unique(level, return_inverse=True)
        counts = sparse.csr_matrix(
            (np.ones(len(level), dtype=np.float32), (index, groups)), shape=(len(distinct), n_groups)
        )
        return counts, distinct

    @staticmethod
    def _sums(weights: np.ndarray, counts: sparse.csr_matrix) -> np.ndarray:
        """(levels x resamples): the weight of the rows at each level."""
        return np.asarray(counts @ weights.T)

    @staticmethod
    def _up_to(at_level: np.ndarray) -> np.ndarray:
        """(levels + 1 x resamples): the weight up to the end of each level, after a leading 0.
        A cumulative sum along the levels costs as much as the sparse product before it
        (about 20 ms for 160,000 levels of 25 resamples): only the sums a metric reads are made."""
        cumulative = np.zeros((at_level.shape[0] + 1, at_level.shape[1]), dtype=at_level.dtype)
        np.cumsum(at_level, axis=0, out=cumulative[1:])
        return cumulative

    def at(self, weights: np.ndarray):
        """``_at(weights)``, remembered for the last structure and chunk of weights this
        thread asked about: the severe ROC-AUC and average precision read the same sums (100
        resamples of a national model's ten metrics: 2.45 s on two threads, 2.9 s when each
        computed them), because ``metrics.SCALAR_METRICS`` names them one after the other.
        One slot per thread, not per structure: each holds tens of MB at national size,
        and every model's structures live until the bootstrap ends."""
        return _remembered(_LAST_RANKS, (self, weights), lambda: self._at(weights))

    def _at(self, weights: np.ndarray):
        """Per positive level: positives there, negatives below it and tied with it; and the
        totals (P, N). Whole numbers of road users (each accident's weight is a count), so
        float32 holds them exactly up to 2**24 rows, and moves half the memory of float64
        through the gathers and sums that dominate; and so every sum is exact in any order."""
        whole = _whole_float32(weights)
        weights = whole if whole is not None and self.rows < 2**24 else weights.astype(np.float64)
        positives = self._sums(weights, self.positive_counts)
        negatives = self._sums(weights, self.negative_counts)
        negatives_up_to = self._up_to(negatives)
        tied = np.zeros_like(positives)
        tied[self.tied] = negatives[self.below[self.tied]]
        return (
            positives,
            negatives_up_to[self.below],
            tied,
            positives.sum(axis=0, dtype=np.float64),
            negatives_up_to[-1].astype(np.float64),
        )

    def roc_auc(self, weights: np.ndarray) -> np.ndarray:
        """Mann-Whitney: P(a positive scores above a negative), ties counting half
        (scikit-learn's ROC-AUC)."""
        positives, below, tied, p, n = self.at(weights)
        pairs = np.einsum("ij,ij->j", positives, below + 0.5 * tied, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return pairs / (p * n)

    def average_precision(self, weights: np.ndarray) -> np.ndarray:
        """Sum over the positives' scores of recall gained x precision at that threshold
        (scikit-learn's average precision)."""
        positives, below, _, p, n = self.at(weights)
        cumulative = self._up_to(positives)[1:]
        at_or_above_pos = (p - cumulative + positives).astype(np.float64)
        at_or_above_neg = (n - below).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            # 0/0 where no row weighs anything at or above a level (none drawn): no recall gained.
            precision = np.nan_to_num(at_or_above_pos / (at_or_above_pos + at_or_above_neg))
            return np.einsum("ij,ij->j", positives, precision, dtype=np.float64) / p


def _remembered(slot: threading.local, key: tuple, compute):
    """``compute()``, or its result of this thread's last call on ``slot`` if that call's
    ``key`` held the same objects (one slot per thread: the last result only; a slot's
    callers all pass keys of one length)."""
    held = getattr(slot, "value", None)
    if held is not None and all(a is b for a, b in zip(held[0], key, strict=True)):
        return held[1]
    result = compute()
    slot.value = (key, result)
    return result


def _per_chunk(function):
    """``function(weights)``, remembered for the last chunk of weights each thread asked
    about: the four confusion-matrix metrics read one confusion matrix per chunk (12 ms each
    at national size when each summed its own), the log loss and calibration errors one row
    count."""
    slot = threading.local()
    return lambda weights: _remembered(slot, (weights,), lambda: function(weights))


@_per_chunk
def _whole_float32(weights: np.ndarray) -> np.ndarray | None:
    """The chunk's weights in float32 when they are whole numbers (counts of draws), else
    None: converted once per chunk, not once per rank structure."""
    return weights.astype(np.float32) if np.array_equal(weights, np.round(weights)) else None


def _binned_gap(probability: np.ndarray, outcome: np.ndarray, sums: _GroupSums):
    bins = metrics.calibration_bins(probability)
    matrix = sums.matrix(bins, metrics.ECE_BINS, probability - outcome)
    return lambda weights: np.abs(sums.apply(matrix, weights)).sum(axis=0)


def resampled_metrics(
    y_true,
    proba: np.ndarray,
    groups,
    classes: list[int],
    accidents: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
    names: Sequence[str] = metrics.SCALAR_METRICS,
) -> dict[str, np.ndarray]:
    """Each metric of ``names`` (of ``metrics.SCALAR_METRICS``) on ``resamples`` bootstrap
    resamples of the accidents: ``{metric: array of resamples}`` (NaN where a resample makes
    a metric undefined, e.g. a ROC-AUC without a severe road user).

    ``groups`` is each row's accident; ``accidents``, the sorted accidents resampled (by
    default those of ``groups``): pass the same to score two models on the same resamples,
    or score them together (``resampled_metrics_of_models``).
    """
    groups = np.asarray(groups)
    accidents = np.unique(groups) if accidents is None else np.asarray(accidents)
    scored = {None: (y_true, proba, groups)}
    return resampled_metrics_of_models(scored, classes, accidents, resamples, seed, names)[None]


def resampled_metrics_of_models(
    scored: Mapping[K, tuple],
    classes: list[int],
    accidents: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
    names: Sequence[str] = metrics.SCALAR_METRICS,
) -> dict[K, dict[str, np.ndarray]]:
    """``resampled_metrics`` of several models, ``scored`` = ``{model: (y_true, proba,
    groups)}``, on the same resamples of ``accidents``: each chunk of weights is drawn once
    for every model (drawing 1,000 resamples of 175,000 accidents costs 2.4 s)."""
    accidents = np.asarray(accidents)
    functions = {
        model: _model_functions(y_true, proba, groups, classes, accidents, names)
        for model, (y_true, proba, groups) in scored.items()
    }
    rows = max((len(np.asarray(groups)) for _, _, groups in scored.values()), default=0)
    return _compute(functions, len(accidents), rows, resamples, seed, names)


def _model_functions(y_true, proba, groups, classes, accidents, names) -> dict:
    y_true, groups = np.asarray(y_true), np.asarray(groups)
    proba = np.asarray(proba, dtype=np.float64)
    position = np.searchsorted(accidents, groups)
    if len(groups) and (position.max() >= len(accidents) or (accidents[position] != groups).any()):
        raise ValueError("some rows belong to accidents that are not among those resampled")
    unknown = set(np.unique(y_true).tolist()) - set(classes)
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} of y_true are not among {classes}")
    return _metric_functions(y_true, proba, classes, _GroupSums(position, len(accidents)), names)


def point_metrics(y_true, proba: np.ndarray, classes: list[int], names=metrics.SCALAR_METRICS) -> dict:
    """The same computations with every row weighted 1: ``classification_metrics`` again
    (what the tests compare, so that the intervals are around the reported figures)."""
    y_true = np.asarray(y_true)
    sums = _GroupSums(np.arange(len(y_true)), len(y_true))
    weights = np.ones((1, len(y_true)))
    values = _metric_functions(y_true, np.asarray(proba, dtype=np.float64), classes, sums, names)
    return {name: float(function(weights)[0]) for name, function in values.items()}


def _compute(functions: dict, n_groups: int, rows: int, resamples: int, seed: int, names) -> dict:
    """Chunks of resamples on as many threads as ``ml.threads`` gives these rows (NumPy's
    gathers and sums release the GIL). The weights are drawn in order, in this thread, while
    the threads compute the chunks before (at most threads + 1 chunks in flight, which
    bounds memory): the values do not depend on the threads."""
    out = {model: {name: np.empty(resamples) for name in names} for model in functions}
    if not functions:
        return out

    def chunk_metrics(weights: np.ndarray) -> dict:
        return {
            model: {name: function(weights) for name, function in by_name.items()}
            for model, by_name in functions.items()
        }

    threads = threads_for_rows(rows)
    pending: deque = deque()
    done = 0

    def collect() -> None:
        nonlocal done
        size, future = pending.popleft()
        for model, values in future.result().items():
            for name, value in values.items():
                out[model][name][done : done + size] = value
        done += size

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bootstrap") as pool:
        try:
            for weights in resample_weights(n_groups, resamples, seed):
                pending.append((len(weights), pool.submit(chunk_metrics, weights)))
                if len(pending) > threads:
                    collect()
            while pending:
                collect()
        except BaseException:  # a failed chunk: do not compute the ones queued behind it
            pool.shutdown(cancel_futures=True)
            raise
    return out


def _metric_functions(y_true, proba, classes, sums: _GroupSums, names) -> dict:
    """``{metric: function of a (resamples x groups) weight array -> one value per resample}``."""
    k = len(classes)
    true_index = np.searchsorted(classes, y_true)
    predicted = np.argmax(proba, axis=1)
    confusion_matrix = sums.matrix(true_index * k + predicted, k * k)
    is_severe = np.isin(y_true, SEVERE_CLASSES)
    p_severe = metrics.severe_probability(proba, classes)

    def confusion(weights):
        return sums.apply(confusion_matrix, weights).reshape(k, k, -1)  # true x predicted x resample

    @_per_chunk
    def f1_and_support(weights):
        c = confusion(weights)
        tp = np.diagonal(c, axis1=0, axis2=1).T
        support, predicted_count = c.sum(axis=1), c.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(support + predicted_count > 0, 2 * tp / (support + predicted_count), 0.0)
        return f1, support, tp

    def macro_f1(weights):
        return f1_and_support(weights)[0].mean(axis=0)

    def weighted_f1(weights):
        f1, support, _ = f1_and_support(weights)
        return (f1 * support).sum(axis=0) / support.sum(axis=0)

    def accuracy(weights):
        _, support, tp = f1_and_support(weights)
        return tp.sum(axis=0) / support.sum(axis=0)

    def balanced_accuracy(weights):
        # Over the classes present (scikit-learn drops a class without true rows).
        _, support, tp = f1_and_support(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(np.where(support > 0, tp / support, np.nan), axis=0)

    @cache
    def severe_ranks() -> _Ranks:  # one for both severe rank metrics
        return _Ranks(is_severe, p_severe, sums)

    def auc_of(outcome, score):
        return _Ranks(outcome, score, sums).roc_auc

    def roc_auc_ovr_macro(weights):
        return np.mean([one(weights) for one in per_class_auc], axis=0)

    clipped = np.clip(np.clip(proba, _LOG_FLOOR, 1), _EPS, 1 - _EPS)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    row_loss = -np.log(clipped[np.arange(len(y_true)), true_index])
    loss_matrix = sums.matrix(np.zeros(len(y_true), dtype=np.intp), 1, row_loss)
    count_matrix = sums.matrix(np.zeros(len(y_true), dtype=np.intp), 1)

    @_per_chunk
    def row_count(weights):
        return sums.apply(count_matrix, weights)[0]

    def log_loss(weights):
        return sums.apply(loss_matrix, weights)[0] / row_count(weights)

    def per_row_mean(gap):
        return lambda weights: gap(weights) / row_count(weights)

    builders = {
        "macro_f1": lambda: macro_f1,
        "weighted_f1": lambda: weighted_f1,
        "accuracy": lambda: accuracy,
        "balanced_accuracy": lambda: balanced_accuracy,
        "roc_auc_ovr_macro": lambda: roc_auc_ovr_macro,
        "log_loss": lambda: log_loss,
        "severe_roc_auc": lambda: severe_ranks().roc_auc,
        "severe_average_precision": lambda: severe_ranks().average_precision,
        "top_label_ece": lambda: per_row_mean(
            _binned_gap(proba.max(axis=1), (predicted == true_index).astype(np.float64), sums)
        ),
        "severe_ece": lambda: per_row_mean(_binned_gap(p_severe, is_severe.astype(np.float64), sums)),
    }
    per_class_auc = (
        [auc_of(true_index == j, proba[:, j]) for j in range(k)] if "roc_auc_ovr_macro" in names else []
    )
    return {name: builders[name]() for name in names}


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` share of the resampled values (NaN ones left out)."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def metric_intervals(
    y_true,
    proba: np.ndarray,
    groups,
    classes: list[int],
    accidents: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
) -> dict[str, tuple[float, float]]:
    """A 95% percentile interval for each metric of ``metrics.SCALAR_METRICS``."""
    resampled = resampled_metrics(y_true, proba, groups, classes, accidents, resamples, seed)
    return {name: percentile_interval(values) for name, values in resampled.items()}
