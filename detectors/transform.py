"""The reference's quantile transform: any feature's values as uniform values under no drift.

ADWIN's bound assumes bounded values and Page-Hinkley's threshold is in the data's units,
so their false-alarm rate depends on the feature's distribution: on a heavy-tailed amount
(log-normal, Pareto) a single large value moves a mean more than a real shift would. The
probability integral transform ``u = F_ref(x)`` against the reference's CDF turns every
continuous feature into Uniform(0, 1) values while the feature is stable, so one
calibration (:mod:`detectors.budget`) holds for all of them, and a shift of the feature
becomes a shift of ``u`` (``mean(u) = 0.74``: values now sit, on average, at the
reference's 74th percentile).

Where the reference CDF jumps (a discrete feature: counts, ratings), ``u`` is drawn
uniformly between the jump's two limits (the randomised PIT), which keeps ``u`` exactly
uniform. The draw for the ``i``-th value is a hash of ``(seed, i)`` (SplitMix64): no
generator state, so batches of any size and a restored transform give the same ``u``.

>>> rng = np.random.default_rng(0)
>>> pit = QuantileTransform.from_values(rng.lognormal(3, 1.5, 5000))
>>> u = pit.transform(rng.lognormal(3, 1.5, 100_000))
>>> round(float(u.mean()), 2), round(float(u.std() * np.sqrt(12)), 2)
(0.5, 1.0)
>>> counts = QuantileTransform.from_values(rng.poisson(1.5, 5000).astype(float))
>>> u = counts.transform(rng.poisson(1.5, 100_000).astype(float))
>>> round(float(u.mean()), 2), round(float(u.std() * np.sqrt(12)), 2)
(0.5, 1.0)
>>> QuantileTransform.from_data(counts.to_data()).to_data() == counts.to_data()
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.base import SnapshotError
from detectors.profile import QUANTILE_LEVELS, NumericProfile
from detectors.window import shared_cdf

__all__ = ["QuantileTransform"]

_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)


def _uniform_hash(seed: int, first: int, count: int) -> npt.NDArray[np.float64]:
    """SplitMix64 of ``seed * 2**32 + i`` for i in [first, first + count), in [0, 1)."""
    index = np.arange(first, first + count, dtype=np.uint64)
    z = index + np.uint64(seed) * np.uint64(2**32)
    with np.errstate(over="ignore"):
        z = (z + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


class QuantileTransform:
    """``u = F_ref(x)`` with randomised ties, against a reference's percentile grid."""

    __slots__ = ("_cdf", "count", "quantiles", "seed")

    def __init__(self, quantiles: npt.ArrayLike, seed: int = 0, count: int = 0) -> None:
        self.quantiles = np.asarray(quantiles, dtype=np.float64)
        if self.quantiles.shape != QUANTILE_LEVELS.shape or not np.all(
            np.diff(self.quantiles) >= 0
        ):
            raise ValueError(f"quantiles must be {len(QUANTILE_LEVELS)} non-decreasing numbers")
        self.seed = seed
        self.count = count  # values transformed so far: the index of the next tie draw
        self._cdf = shared_cdf(self.quantiles)
        self.quantiles = self._cdf.quantiles  # the same values, one copy

    @classmethod
    def from_profile(cls, profile: NumericProfile, seed: int = 0) -> QuantileTransform:
        return cls(profile.quantiles, seed)

    @classmethod
    def from_values(cls, values: npt.ArrayLike, seed: int = 0) -> QuantileTransform:
        """The transform of a reference sample (e.g. a signal's warm-up values)."""
        return cls(np.quantile(np.asarray(values, dtype=np.float64), QUANTILE_LEVELS), seed)

    def transform(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Uniform values for ``values`` (finite floats), in order; advances the counter."""
        values = np.asarray(values, dtype=np.float64)
        if self._cdf.continuous:  # no jump to randomise: u is F(v) (a continuous feature)
            self.count += len(values)
            return self._cdf.right(values)
        right, left = self._cdf(values)
        jumps = right > left
        if jumps.any():
            draws = _uniform_hash(self.seed, self.count, len(values))
            right = np.where(jumps, left + draws * (right - left), right)
        self.count += len(values)
        return right

    def to_data(self) -> dict[str, Any]:
        return {"quantiles": self.quantiles.tolist(), "seed": self.seed, "count": self.count}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> QuantileTransform:
        try:
            return cls(data["quantiles"], int(data["seed"]), int(data["count"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"quantile transform: corrupt snapshot ({exc!r})") from exc
