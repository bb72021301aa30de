"""Rolling model performance over the last joined pairs, checked against acceptable limits.

Metrics are computed with numpy from a ring buffer of the last ``window`` pairs, every
``every`` pairs once the window is full. Each value depends only on the buffer contents, so
a restored buffer continues bit-for-bit (river's incremental rolling metrics accumulate
floating-point round-off that a restore from plain data cannot reproduce; the unit tests
check these formulas against river.metrics).

Two checks per metric: ``threshold``, the configured acceptable limit, and ``baseline``, a
limit learnt from the version's first ``reference_pairs`` pairs (:mod:`~streams.engine.baseline`:
the metric's spread over windows of ``window`` pairs, bootstrapped from those pairs, at the
tail probability of the detector's share of the false-alarm budget), widened to at least
``relative_drop`` of the reference value when one is configured.

>>> perf = RollingPerformance("regression", window=10, every=5, thresholds={"mae": 0.5},
...                           relative_drop=None)
>>> changes = perf.update(np.zeros(10), np.ones(10))
>>> [(c.metric, c.detector, c.entered, c.value) for c in changes]
[('mae', 'threshold', True, 1.0)]
"""

from __future__ import annotations

import importlib
from array import array
from collections.abc import Mapping
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from streams.engine.baseline import BaselineLimit, calibrate_baseline
from streams.engine.config import METRICS
from streams.engine.limits import LimitChecks, MetricChange

__all__ = [
    "MetricChange",
    "RollingPerformance",
    "average_ranks",
    "compute_metric",
    "resampled_metric",
]

FloatArray = npt.NDArray[np.float64]
_EPS: Final = 1e-15


def _sort_kind_16() -> Literal["stable"] | None:
    """The faster of numpy's sorts for rows of 16-bit integers (the same order either way:
    equal integers are alike): its default is vectorised only on AVX-512 (ICL and later);
    elsewhere it is an introsort, ~4x slower than the radix sort ``stable`` selects
    (400 x 1000 keys on a 2-core AMD EPYC with AVX2: 13.3 ms against 3.1)."""
    try:  # numpy's own record of the CPU (private; if it moves, radix is never slow)
        features = importlib.import_module("numpy._core._multiarray_umath").__cpu_features__
    except (ImportError, AttributeError):
        return "stable"
    return None if features.get("AVX512_ICL") else "stable"


_SORT_16: Final = _sort_kind_16()


def compute_metric(
    name: str, score: FloatArray, label: FloatArray, threshold: float
) -> float | None:
    """One metric over paired arrays; ``score`` is the prediction (probability or value).

    For ``multiclass``, ``score`` holds 1.0 where the class was right (accuracy only).
    Returns ``None`` when the metric is undefined (ROC AUC with one class only).
    """
    if name == "roc_auc":
        positives = int((label >= 0.5).sum())
        negatives = label.size - positives
        if positives == 0 or negatives == 0:
            return None
        ranks = average_ranks(score)
        rank_sum = float(ranks[label >= 0.5].sum())
        return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
    mean = _per_pair(name, score, label, threshold).mean()
    return float(np.sqrt(mean) if name == "rmse" else mean)


def average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, tied values sharing their average rank: ``scipy.stats.rankdata``'s
    default, the same numbers (NaN anywhere: all NaN) without its ~70 µs of argument
    handling per call (ROC AUC is evaluated every ``performance.every`` pairs).

    >>> average_ranks(np.array([0.5, 0.1, 0.5, 0.9])).tolist()
    [2.5, 1.0, 2.5, 4.0]
    """
    n = values.size
    if np.isnan(values).any():
        return np.full(n, np.nan)
    order = np.argsort(values)
    starts, ends = _runs(values[order])
    ranks = np.empty(n)
    if starts.size == n:  # no ties: a value's rank is its place in the order
        ranks[order] = np.arange(1.0, n + 1.0)
    else:
        ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _runs(ordered: npt.NDArray[Any]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Where each run of equal values of the sorted ``ordered`` starts, and where it ends
    (exclusive)."""
    first = np.empty(ordered.size, dtype=np.bool_)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return starts, np.append(starts[1:], ordered.size)


def _per_pair(name: str, score: FloatArray, label: FloatArray, threshold: float) -> FloatArray:
    """The per-pair term whose mean is metric ``name`` (``rmse``: the mean's square root)."""
    if name == "accuracy":
        right = score if threshold < 0 else ((score >= threshold) == (label >= 0.5))
        return np.asarray(right, dtype=np.float64)
    if name == "log_loss":
        p = np.clip(score, _EPS, 1.0 - _EPS)
        return np.asarray(-(label * np.log(p) + (1.0 - label) * np.log(1.0 - p)))
    if name == "mae":
        return np.abs(label - score)
    if name == "rmse":
        return np.asarray((label - score) ** 2)
    raise ValueError(f"unknown metric {name!r}")


def resampled_metric(
    name: str, score: FloatArray, label: FloatArray, threshold: float, picks: npt.NDArray[Any]
) -> FloatArray:
    """:func:`compute_metric` of many resamples of the pairs at once: row ``r`` of
    ``picks`` holds the indices of the pairs drawn for resample ``r``; ``NaN`` where the
    metric is undefined.

    The same values as :func:`compute_metric` on each resample (up to float summation
    order), in a few numpy passes: a mean metric averages a per-pair value over each row;
    ROC AUC counts, for each drawn positive, the drawn negatives scored below it (ties
    half), with the scores ranked once.

    >>> score, label = np.array([0.9, 0.2, 0.6, 0.6]), np.array([1.0, 0.0, 0.0, 1.0])
    >>> picks = np.array([[0, 1, 2, 3], [0, 0, 1, 3], [0, 3, 3, 3]])
    >>> resampled_metric("roc_auc", score, label, 0.5, picks).tolist()
    [0.875, 1.0, nan]
    >>> [compute_metric("roc_auc", score[p], label[p], 0.5) for p in picks]
    [0.875, 1.0, None]
    """
    if name == "roc_auc":
        return _resampled_auc(score, label, picks)
    means = _per_pair(name, score, label, threshold)[picks].mean(axis=1)
    return np.asarray(np.sqrt(means) if name == "rmse" else means, dtype=np.float64)


def _resampled_auc(score: FloatArray, label: FloatArray, picks: npt.NDArray[Any]) -> FloatArray:
    """ROC AUC of each row of ``picks``: over drawn (positive, negative) pairs, the share
    where the positive scores higher, ties counting half (Mann-Whitney, as in
    :func:`compute_metric`). Counts are exact integers, so the figures are those of a
    resample at a time."""
    _, rank = np.unique(score, return_inverse=True)  # tied scores share a rank
    positive = label >= 0.5
    rows, width = picks.shape
    # one sort per row of keys 2 * rank (+1 for a negative): of tied scores the positives
    # come first, so the j-th positive (from 0) at place i beats the i - j negatives before
    keys = rank * 2 + ~positive
    kind: Literal["stable"] | None = None
    if keys.max() <= np.iinfo(np.int16).max:
        keys, kind = keys.astype(np.int16), _SORT_16  # a quarter of the bytes to gather
    ordered = np.sort(keys[picks], axis=1, kind=kind)
    drawn_positive = 1 - (ordered & 1)
    n_pos = drawn_positive.sum(axis=1, dtype=np.int64)
    # sums of places: integers far below 2**53, exact in float64 (and BLAS-fast)
    places = drawn_positive.astype(np.float64) @ np.arange(width, dtype=np.float64)
    wins = places - n_pos * (n_pos - 1) // 2
    if np.intersect1d(rank[positive], rank[~positive]).size:
        # a positive tied with a negative: half a win; in a row's order the run of key 2k
        # (positives) is followed by the run of 2k + 1 (negatives) when both were drawn
        span = 2 * (int(rank.max()) + 1)
        flat = (ordered + (np.arange(rows, dtype=np.int64) * span)[:, None]).ravel()
        starts, ends = _runs(flat)
        counts = ends - starts
        run = flat[starts]
        tied = (run[:-1] % 2 == 0) & (run[:-1] + 1 == run[1:])
        pairs = counts[:-1][tied] * counts[1:][tied]
        wins += 0.5 * np.bincount(run[:-1][tied] // span, weights=pairs, minlength=rows)
    n_neg = width - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = wins / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return np.asarray(auc, dtype=np.float64)


class RollingPerformance:
    """Metrics of one model version over a sliding window of joined pairs."""

    def __init__(
        self,
        task: str,
        *,
        window: int,
        every: int,
        thresholds: Mapping[str, float],
        relative_drop: float | None,
        threshold: float = 0.5,
        clear_after: int = 1,
        reference_pairs: int = 1000,
        baseline_tail: float = 1e-6,
    ) -> None:
        self.task = task
        self.metrics: Mapping[str, bool] = METRICS[task]  # name -> higher is better
        self.window = window
        self.every = every
        self.thresholds = {k: v for k, v in thresholds.items() if k in self.metrics}
        self.relative_drop = relative_drop
        self.threshold = threshold if task == "binary" else -1.0
        self._score = np.zeros(window)
        #: a binary or multiclass pair's label is exactly 0 or 1 (the join admits no other):
        #: a byte each instead of eight; metrics read it as floats (:meth:`_labels`)
        self._label_dtype = np.float64 if task == "regression" else np.bool_
        self._label: npt.NDArray[Any] = np.zeros(window, dtype=self._label_dtype)
        self.updates = 0
        self.values: dict[str, float | None] = {}
        self.baseline: dict[str, float] = {}  # metric -> value on the reference pairs
        # the version's first pairs, until the baseline is calibrated from them
        self.reference_pairs = max(reference_pairs, window)
        self.baseline_tail = baseline_tail
        # 8 bytes a number (a list of floats took 32): reference_pairs values per version
        self._ref_score = array("d")
        self._ref_label = array("d")
        self._calibrated = relative_drop is None
        self.checks = LimitChecks(self.thresholds, clear_after)
        self.clear_after = clear_after

    @property
    def limits(self) -> dict[str, BaselineLimit]:
        """metric -> calibrated baseline limit (empty until calibrated)."""
        return self.checks.calibrated

    @property
    def active(self) -> dict[str, bool]:
        """``"<metric>/<detector>"`` -> beyond its limit (see :class:`LimitChecks`)."""
        return self.checks.active

    def detectors(self, metric: str) -> list[str]:
        """Names of the checks run on ``metric``."""
        out = []
        if metric in self.thresholds:
            out.append("threshold")
        if self.relative_drop is not None:
            out.append("baseline")
        return out

    def update(self, score: FloatArray, label: FloatArray) -> list[MetricChange]:
        """Add pairs; evaluate at every multiple of ``every`` once the window is full."""
        changes: list[MetricChange] = []
        start, n = 0, score.size
        while start < n:
            until_eval = self.every - self.updates % self.every
            stop = min(n, start + until_eval)
            self._append(score[start:stop], label[start:stop])
            start = stop
            if self.updates % self.every == 0 and self.updates >= self.window:
                changes.extend(self._evaluate())
        return changes

    def _append(self, score: FloatArray, label: FloatArray) -> None:
        room = self.reference_pairs - len(self._ref_score)
        if not self._calibrated and room > 0:
            self._ref_score.extend(score[:room].tolist())
            self._ref_label.extend(label[:room].tolist())
        if score.size > self.window:  # only the last `window` values can stay
            skip = score.size - self.window
            self.updates += skip
            score, label = score[skip:], label[skip:]
        at = self.updates % self.window
        first = min(score.size, self.window - at)
        self._score[at : at + first] = score[:first]
        self._label[at : at + first] = label[:first]
        rest = score.size - first
        if rest:
            self._score[:rest] = score[first:]
            self._label[:rest] = label[first:]
        self.updates += score.size

    def _calibrate(self) -> None:
        """The baseline limits, once the reference pairs are in (seeded, deterministic)."""
        if self._calibrated or len(self._ref_score) < self.reference_pairs:
            return
        score = np.array(self._ref_score, dtype=np.float64)  # (copies: the buffers may grow)
        label = np.array(self._ref_label, dtype=np.float64)
        for metric, higher_better in self.metrics.items():

            def compute(s: FloatArray, y: FloatArray, m: str = metric) -> float | None:
                return compute_metric(m, s, y, self.threshold)

            def resampled(picks: npt.NDArray[Any], m: str = metric) -> FloatArray:
                return resampled_metric(m, score, label, self.threshold, picks)

            limit = calibrate_baseline(
                compute,
                resampled,
                metric,
                score,
                label,
                window=self.window,
                higher_better=higher_better,
                tail=self.baseline_tail,
                relative_drop=self.relative_drop,
            )
            if limit is not None:
                self.limits[metric] = limit
                self.baseline[metric] = limit.reference
        self._calibrated = True
        self._ref_score, self._ref_label = array("d"), array("d")

    def _evaluate(self) -> list[MetricChange]:
        changes = []
        self._calibrate()
        label = self._labels(self.window)
        for metric, higher_better in self.metrics.items():
            value = compute_metric(metric, self._score, label, self.threshold)
            self.values[metric] = value
            if value is None:
                continue
            # until the reference pairs are in, the first full window stands for them (a
            # deployment verification may compare the next version with it)
            self.baseline.setdefault(metric, value)
            changes += self.checks.check(metric, higher_better, value, self.updates)
        return changes

    def degraded(self) -> bool:
        return any(self.active.values())

    def recent(self, metric: str) -> tuple[float | None, int]:
        """``metric`` over the pairs in the window now (all of them, even before the window
        is full) and how many pairs that is; the deployment verification uses it.

        >>> perf = RollingPerformance("binary", window=10, every=5, thresholds={},
        ...                           relative_drop=None)
        >>> _ = perf.update(np.array([0.9, 0.2, 0.7]), np.array([1.0, 0.0, 0.0]))
        >>> perf.recent("accuracy")
        (0.6666666666666666, 3)
        """
        count = min(self.updates, self.window)
        if count == 0:
            return None, 0
        score = self._score[:count] if count < self.window else self._score
        return compute_metric(metric, score, self._labels(count), self.threshold), count

    def _labels(self, count: int) -> FloatArray:
        """The first ``count`` labels of the window as floats."""
        label = self._label[:count] if count < self.window else self._label
        return label if label.dtype == np.float64 else label.astype(np.float64)

    def snapshot(self) -> dict[str, Any]:
        return {
            "score": self._score.tolist(),
            "label": self._labels(self.window).tolist(),
            "updates": self.updates,
            "values": dict(self.values),
            "baseline": dict(self.baseline),
            "limits": {metric: limit.to_data() for metric, limit in self.limits.items()},
            "reference": [list(self._ref_score), list(self._ref_label)],
            "calibrated": self._calibrated,
            **self.checks.snapshot(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self._score = np.asarray(data["score"], dtype=np.float64)
        self._label = np.asarray(data["label"], dtype=np.float64).astype(self._label_dtype)
        self.updates = int(data["updates"])
        self.values = dict(data["values"])
        self.baseline = {k: float(v) for k, v in data["baseline"].items()}
        self.checks.calibrated = {
            k: BaselineLimit.from_data(v) for k, v in data.get("limits", {}).items()
        }
        reference = data.get("reference", [[], []])
        self._ref_score = array("d", (float(v) for v in reference[0]))
        self._ref_label = array("d", (float(v) for v in reference[1]))
        # a snapshot from before the calibrated baseline collects its reference pairs anew
        # (the next ``reference_pairs`` pairs) unless the check is off
        self._calibrated = bool(data.get("calibrated", self.relative_drop is None))
        self.checks.restore(data)
