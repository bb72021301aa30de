"""A model version's performance baseline: how far a rolling metric may wander by chance.

The rolling metric is computed over windows of ``window`` joined pairs. The version's first
``reference_pairs`` pairs give the reference value of each metric and, by a seeded
bootstrap over windows of ``window`` pairs drawn from them, the metric's spread over such a
window. Comparing a window with the reference adds the reference's own uncertainty
(``spread² · window / reference_pairs``), so the limit is

    reference ∓ z · spread · sqrt(1 + window / reference_pairs)

with ``z`` the normal quantile at the evaluation's tail probability (its share of the
model's false-alarm budget), widened to at least ``relative_drop`` of the reference value
when that effect-size floor is configured. Both are reported in the alert, with the
window's z-score and its one-sided tail probability.

>>> rng = np.random.default_rng(3)
>>> p = rng.random(2000)
>>> y = (rng.random(2000) < p).astype(float)
>>> accuracy = lambda s, l: float(((s >= 0.5) == (l >= 0.5)).mean())
>>> right = ((p >= 0.5) == (y >= 0.5)).astype(float)
>>> resampled = lambda picks: right[picks].mean(axis=1)
>>> limit = calibrate_baseline(accuracy, resampled, "accuracy", p, y, window=1000,
...                            higher_better=True, tail=1e-6, relative_drop=None)
>>> round(limit.reference, 3), round(limit.spread, 4), round(limit.limit, 3)
(0.757, 0.0163, 0.68)
>>> round(limit.z_score(0.70), 1), limit.tail_probability(0.70) < 1e-3
(-3.5, True)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.budget import CALIBRATION_SEED, z_for_tail

__all__ = ["BOOTSTRAP_WINDOWS", "BaselineLimit", "calibrate_baseline"]

#: Bootstrap windows per metric (evaluated together: ~2 to ~6 ms per metric at 1000 pairs).
BOOTSTRAP_WINDOWS: Final = 400
#: Most drawn pairs (windows x window size) evaluated in one pass.
_BLOCK_ENTRIES: Final = 1 << 20
_NORMAL: Final = NormalDist()
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BaselineLimit:
    """A metric's reference value, its spread over a window, and the alerting limit."""

    reference: float
    spread: float  # standard deviation of (window metric - reference metric)
    limit: float
    higher_better: bool
    tail: float  # the per-evaluation tail probability the limit stands for

    def z_score(self, value: float) -> float:
        """How many spreads ``value`` is from the reference (negative: worse)."""
        if self.spread <= 0:
            return 0.0
        sign = 1.0 if self.higher_better else -1.0
        return sign * (value - self.reference) / self.spread

    def tail_probability(self, value: float) -> float:
        """One-sided probability of a window this much worse by chance."""
        return _NORMAL.cdf(self.z_score(value))

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BaselineLimit:
        return cls(
            float(data["reference"]),
            float(data["spread"]),
            float(data["limit"]),
            bool(data["higher_better"]),
            float(data["tail"]),
        )


def calibrate_baseline(
    compute: Callable[[FloatArray, FloatArray], float | None],
    resampled: Callable[[npt.NDArray[np.int64]], FloatArray],
    metric: str,
    score: FloatArray,
    label: FloatArray,
    *,
    window: int,
    higher_better: bool,
    tail: float,
    relative_drop: float | None,
) -> BaselineLimit | None:
    """The baseline limit of ``metric`` from the reference pairs (``None``: undefined).

    ``compute`` gives the metric of paired arrays (the reference value); ``resampled`` the
    metric of each bootstrap window given as a row of drawn pair indices (``NaN``:
    undefined), so the :data:`BOOTSTRAP_WINDOWS` windows are evaluated in one pass.
    """
    reference = compute(score, label)
    if reference is None:
        return None
    n = score.size
    rng = np.random.default_rng([CALIBRATION_SEED, zlib.crc32(metric.encode()), n])
    block = max(1, _BLOCK_ENTRIES // window)  # windows per pass: bounded memory
    found = np.concatenate(
        [
            # drawn block by block, the same numbers as window by window
            resampled(rng.integers(0, n, (min(block, BOOTSTRAP_WINDOWS - start), window)))
            for start in range(0, BOOTSTRAP_WINDOWS, block)
        ]
    )
    draws = found[~np.isnan(found)]
    window_sd = float(np.std(draws)) if len(draws) > 1 else 0.0
    spread = window_sd * math.sqrt(1.0 + window / score.size)
    margin = z_for_tail(tail) * spread
    if relative_drop is not None:
        margin = max(margin, abs(reference) * relative_drop)
    limit = reference - margin if higher_better else reference + margin
    return BaselineLimit(reference, spread, limit, higher_better, tail)
