"""Rolling model performance over the last joined pairs, checked against acceptable limits.

Metrics are computed with numpy from a ring buffer of the last ``window`` pairs, every
``every`` pairs once the window is full. Each value depends only on the buffer contents, so
a restored buffer continues bit-for-bit (river's incremental rolling metrics accumulate
floating-point round-off that a restore from plain data cannot reproduce; the unit tests
check these formulas against river.metrics).

>>> perf = RollingPerformance("regression", window=10, every=5, thresholds={"mae": 0.5},
...                           relative_drop=None)
>>> changes = perf.update(np.zeros(10), np.ones(10))
>>> [(c.metric, c.detector, c.entered, c.value) for c in changes]
[('mae', 'threshold', True, 1.0)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from streams.engine.config import METRICS
from streams.engine.limits import LimitChecks, MetricChange

__all__ = ["MetricChange", "RollingPerformance", "compute_metric"]

FloatArray = npt.NDArray[np.float64]
_EPS: Final = 1e-15


def compute_metric(
    name: str, score: FloatArray, label: FloatArray, threshold: float
) -> float | None:
    """One metric over paired arrays; ``score`` is the prediction (probability or value).

    For ``multiclass``, ``score`` holds 1.0 where the class was right (accuracy only).
    Returns ``None`` when the metric is undefined (ROC AUC with one class only).
    """
    if name == "accuracy":
        if threshold < 0:  # multiclass: score is already "correct"
            return float(score.mean())
        return float(((score >= threshold) == (label >= 0.5)).mean())
    if name == "roc_auc":
        positives = int((label >= 0.5).sum())
        negatives = label.size - positives
        if positives == 0 or negatives == 0:
            return None
        ranks = rankdata(score)
        rank_sum = float(ranks[label >= 0.5].sum())
        return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
    if name == "log_loss":
        p = np.clip(score, _EPS, 1.0 - _EPS)
        return float(-(label * np.log(p) + (1.0 - label) * np.log(1.0 - p)).mean())
    if name == "mae":
        return float(np.abs(label - score).mean())
    if name == "rmse":
        return float(np.sqrt(((label - score) ** 2).mean()))
    raise ValueError(f"unknown metric {name!r}")


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
    ) -> None:
        self.task = task
        self.metrics: Mapping[str, bool] = METRICS[task]  # name -> higher is better
        self.window = window
        self.every = every
        self.thresholds = {k: v for k, v in thresholds.items() if k in self.metrics}
        self.relative_drop = relative_drop
        self.threshold = threshold if task == "binary" else -1.0
        self._score = np.zeros(window)
        self._label = np.zeros(window)
        self.updates = 0
        self.values: dict[str, float | None] = {}
        self.limits = LimitChecks(self.thresholds, relative_drop, clear_after)
        self.clear_after = clear_after

    @property
    def baseline(self) -> dict[str, float]:
        return self.limits.baseline

    @property
    def active(self) -> dict[str, bool]:
        """``"<metric>/<detector>"`` -> below its limit (see :class:`LimitChecks`)."""
        return self.limits.active

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

    def _evaluate(self) -> list[MetricChange]:
        changes = []
        for metric, higher_better in self.metrics.items():
            value = compute_metric(metric, self._score, self._label, self.threshold)
            self.values[metric] = value
            if value is not None:
                changes += self.limits.check(metric, higher_better, value, self.updates)
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
        if count < self.window:
            score, label = self._score[:count], self._label[:count]
        else:
            score, label = self._score, self._label
        return compute_metric(metric, score, label, self.threshold), count

    def snapshot(self) -> dict[str, Any]:
        return {
            "score": self._score.tolist(),
            "label": self._label.tolist(),
            "updates": self.updates,
            "values": dict(self.values),
            **self.limits.snapshot(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self._score = np.asarray(data["score"], dtype=np.float64)
        self._label = np.asarray(data["label"], dtype=np.float64)
        self.updates = int(data["updates"])
        self.values = dict(data["values"])
        self.limits.restore(data)
