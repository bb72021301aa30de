"""Performance estimated before the labels arrive: confidence-based performance estimation
(CBPE, as NannyML calls it) for binary models with probability outputs.

The model's score is *calibrated* on the labelled pairs of the same version — isotonic
regression of the label on the score (``scipy.optimize.isotonic_regression``), so the
calibrated score is P(y = 1 | score) as the labels have shown it — and the metrics of the
latest predictions, whose labels have mostly not come yet, are taken in *expectation*:

* expected accuracy: the mean probability that each prediction is right (the calibrated
  probability where the model says 1, its complement where it says 0);
* expected ROC AUC: the area under the expected ROC curve, each prediction counting as
  ``q`` of a positive and ``1 - q`` of a negative at its score.

**When it is wrong.** The estimate assumes that P(y | score) learned from the labelled pairs
still holds for the new predictions. Data drift (the inputs move, the world's rule does not)
keeps it: that is what it is for. Concept drift (the rule changes) breaks it silently: the
scores look as confident as before, so the estimate stays put while the realised metric
falls. Alerts on ``estimate:*`` say so in their details (``reliable: false`` while the
version's ``error`` signal is in drift), and estimates never request retraining.

>>> rng = np.random.default_rng(1)
>>> scores = rng.random(5000)
>>> labels = (rng.random(5000) < scores).astype(float)   # a calibrated model
>>> table = calibration(scores, labels)
>>> new = rng.random(2000)
>>> q = calibrated(table, new)
>>> round(expected_accuracy(new, q, 0.5), 2), round(expected_roc_auc(new, q), 2)
(0.74, 0.82)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression

from streams.engine.limits import LimitChecks, MetricChange

__all__ = [
    "ESTIMATED",
    "PerformanceEstimate",
    "calibrated",
    "calibration",
    "expected_accuracy",
    "expected_roc_auc",
]

FloatArray = npt.NDArray[np.float64]
#: Estimated metrics and whether higher is better.
ESTIMATED: Final[Mapping[str, bool]] = {"accuracy": True, "roc_auc": True}


def calibration(scores: FloatArray, labels: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The isotonic calibration table ``(score, P(y=1))`` at each distinct score."""
    order = np.argsort(scores, kind="stable")
    xs, ys = scores[order], labels[order]
    unique, start = np.unique(xs, return_index=True)
    sums = np.add.reduceat(ys, start)
    counts = np.diff(np.append(start, xs.size)).astype(np.float64)
    fitted = isotonic_regression(sums / counts, weights=counts, increasing=True).x
    return unique, np.asarray(fitted, dtype=np.float64)


def calibrated(table: tuple[FloatArray, FloatArray], scores: FloatArray) -> FloatArray:
    """P(y=1) of ``scores``: linear between the table's points, flat beyond them."""
    xs, ys = table
    return np.asarray(np.interp(scores, xs, ys), dtype=np.float64)


def expected_accuracy(scores: FloatArray, q: FloatArray, threshold: float) -> float:
    """Mean probability that each prediction is right, given P(y=1) = ``q``."""
    says_one = scores >= threshold
    return float(np.where(says_one, q, 1.0 - q).mean())


def expected_roc_auc(scores: FloatArray, q: FloatArray) -> float | None:
    """Area under the expected ROC curve: each prediction is ``q`` of a positive and
    ``1 - q`` of a negative at its score (ties count half). None without both classes."""
    positive, negative = float(q.sum()), float((1.0 - q).sum())
    if positive <= 0.0 or negative <= 0.0:
        return None
    unique, inverse = np.unique(scores, return_inverse=True)
    pos = np.bincount(inverse, weights=q, minlength=unique.size)
    neg = np.bincount(inverse, weights=1.0 - q, minlength=unique.size)
    below = np.cumsum(neg) - neg  # negative mass strictly below each score
    return float((pos * (below + 0.5 * neg)).sum() / (positive * negative))


class PerformanceEstimate:
    """The CBPE estimate of one binary model version, checked against the limits.

    ``add_scores`` takes the version's usable predictions, ``add_pairs`` its labelled
    pairs, each with their positions in the model's stream; :meth:`evaluate` then computes
    the estimate every ``every`` predictions over the last ``window`` of them, calibrated on
    the last ``calibration_pairs`` pairs joined *before* that position (so the result does
    not depend on batch boundaries), once ``min_pairs`` pairs exist.
    """

    def __init__(
        self,
        *,
        window: int,
        every: int,
        calibration_pairs: int,
        min_pairs: int,
        threshold: float,
        thresholds: Mapping[str, float],
        clear_after: int,
    ) -> None:
        self.window = window
        self.every = every
        self.calibration_pairs = calibration_pairs
        self.min_pairs = min_pairs
        self.threshold = threshold
        #: the checks; ``limits.calibrated`` is the version's realised-metric baseline (same
        #: metric, same window: the same chance spread), linked by the model
        self.limits = LimitChecks(
            {k: v for k, v in thresholds.items() if k in ESTIMATED}, clear_after
        )
        self.scores = np.zeros(0)  # the last `window` scores
        self.seen = 0  # scores received
        self.pair_scores = np.zeros(0)
        # binary labels (exactly 0.0 or 1.0, as the join admits them): 1 byte each, not 8
        self.pair_labels = np.zeros(0, dtype=np.bool_)
        self.pair_positions = np.zeros(0, dtype=np.int64)
        self.values: dict[str, float | None] = {}
        self.evaluated_at: int | None = None  # position of the last estimate
        self.calibrated_on = 0  # pairs behind the last estimate
        self._pending: list[tuple[FloatArray, npt.NDArray[np.int64], FloatArray]] = []

    def add_scores(
        self, scores: FloatArray, positions: npt.NDArray[np.int64], times: FloatArray
    ) -> None:
        """Usable predictions of the version, their positions and event times."""
        if scores.size:
            self._pending.append((scores, positions, times))

    def add_pairs(
        self, scores: FloatArray, labels: FloatArray, positions: npt.NDArray[np.int64]
    ) -> None:
        """Labelled pairs of the version; ``labels`` are a binary model's, 0.0 or 1.0."""
        self.pair_scores = np.concatenate((self.pair_scores, scores))
        self.pair_labels = np.concatenate((self.pair_labels, labels >= 0.5))
        self.pair_positions = np.concatenate((self.pair_positions, positions))

    def evaluate(self) -> list[tuple[int, float, MetricChange]]:
        """Estimates due for the scores added since the last call; the limit changes, each
        with the position and event time of the prediction at which it was estimated."""
        changes: list[tuple[int, float, MetricChange]] = []
        for scores, positions, times in self._pending:
            start = 0
            while start < scores.size:
                stop = min(scores.size, start + self.every - self.seen % self.every)
                self.scores = np.concatenate((self.scores, scores[start:stop]))[-self.window :]
                self.seen += stop - start
                if self.seen % self.every == 0 and self.seen >= self.window:
                    at = int(positions[stop - 1])
                    changes += [(at, float(times[stop - 1]), c) for c in self._estimate(at)]
                start = stop
        self._pending = []
        keep = self.calibration_pairs  # later estimates come after every pair seen so far
        self.pair_scores = self.pair_scores[-keep:]
        self.pair_labels = self.pair_labels[-keep:]
        self.pair_positions = self.pair_positions[-keep:]
        return changes

    def _estimate(self, position: int) -> list[MetricChange]:
        before = self.pair_positions < position
        scores = self.pair_scores[before][-self.calibration_pairs :]
        if scores.size < self.min_pairs:
            return []
        labels = self.pair_labels[before][-self.calibration_pairs :].astype(np.float64)
        q = calibrated(calibration(scores, labels), self.scores)
        self.values = {
            "accuracy": expected_accuracy(self.scores, q, self.threshold),
            "roc_auc": expected_roc_auc(self.scores, q),
        }
        self.evaluated_at, self.calibrated_on = position, int(scores.size)
        changes = []
        for metric, higher_better in ESTIMATED.items():
            value = self.values[metric]
            if value is not None:
                changes += self.limits.check(metric, higher_better, value, self.seen)
        return changes

    def view(self) -> dict[str, Any]:
        """Values and limits for the metrics view and the status."""
        out = {}
        for metric, higher in ESTIMATED.items():
            value = self.values.get(metric)
            if value is None:
                continue
            limits = self.limits.limits(metric)
            out[metric] = {
                "value": value,
                "threshold": limits.get("threshold", limits.get("baseline")),
                "higher_is_better": higher,
            }
        return out

    def snapshot(self) -> dict[str, Any]:
        assert not self._pending, "snapshot between batches only"
        return {
            "scores": self.scores.tolist(),
            "seen": self.seen,
            "pairs": [self.pair_scores.tolist(), self.pair_labels.astype(np.float64).tolist()],
            "pair_positions": self.pair_positions.tolist(),
            "values": dict(self.values),
            "evaluated_at": self.evaluated_at,
            "calibrated_on": self.calibrated_on,
            **self.limits.snapshot(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.scores = np.asarray(data["scores"], dtype=np.float64)
        self.seen = int(data["seen"])
        self.pair_scores = np.asarray(data["pairs"][0], dtype=np.float64)
        self.pair_labels = np.asarray(data["pairs"][1], dtype=np.float64) >= 0.5
        self.pair_positions = np.asarray(data["pair_positions"], dtype=np.int64)
        self.values = dict(data["values"])
        self.evaluated_at = data["evaluated_at"]
        self.calibrated_on = int(data["calibrated_on"])
        self.limits.restore(data)
