"""Expected band for a model's predictions: a hard range plus a learned band for the mean.

"Customer X has a 72% churn probability" must stay sane: values outside the hard range
``[low, high]`` (e.g. probabilities outside [0, 1]) are tolerated up to
``max_outside_fraction`` of a window, and the window mean must stay within
``mean ± k · SE`` of the reference, where ``SE = sd · √(1/window + 1/reference_count)``
(the window mean's standard error, widened by the reference's own uncertainty).

>>> rng = np.random.default_rng(5)
>>> band = PredictionBand(PredictionBandParams(low=0.0, high=1.0))
>>> calm = rng.beta(2, 5, 3000)
>>> broken = np.where(rng.random(500) < 0.05, 1.7, rng.beta(2, 5, 500))  # 5 % out of range
>>> states = band.update_many(np.concatenate((calm, broken)))
>>> int(np.argmax(states == DriftState.DRIFT)), band.result().details["reason"]
(3149, 'hard_range')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from detectors._checks import require_real
from detectors._windowing import Verdict
from detectors.base import DriftState, Params
from detectors.window import NumericWindowParams, NumericWindowTest

__all__ = ["PredictionBand", "PredictionBandParams"]


@dataclass(frozen=True, slots=True)
class PredictionBandParams(NumericWindowParams):
    """Hard range ``[low, high]`` (``None``: unbounded) with a tolerance for isolated
    outliers, and the mean band's width ``k`` (warning at ``warning_k``) in standard errors.
    """

    window_size: int = 500
    stride: int = 50
    low: float | None = None
    high: float | None = None
    max_outside_fraction: float = 0.01
    k: float = 5.0
    warning_k: float = 4.0

    def validate(self) -> None:
        NumericWindowParams.validate(self)
        for name in ("low", "high"):
            if getattr(self, name) is not None:
                require_real(self, name)
        if self.low is not None and self.high is not None:
            self._require("high", self.high >= self.low, f"must be >= low ({self.low})")
        require_real(self, "max_outside_fraction", low=0.0, high=1.0)
        require_real(self, "k", low=0.0, low_open=True)
        require_real(self, "warning_k", low=0.0, high=self.k, low_open=True)


class PredictionBand(NumericWindowTest):
    """Drift when too many values leave the hard range or the window mean leaves its band.

    The statistic is the window mean's z-score against the reference; ``details`` say which
    rule fired (``reason``), the band, the out-of-range fraction and the means.
    """

    kind: ClassVar[str] = "prediction_band"
    params_type: ClassVar[type[Params]] = PredictionBandParams
    _params: PredictionBandParams

    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        assert self._reference is not None
        params = self._params
        reference = self._reference
        n = len(window)
        ordered = np.sort(window)
        mean = float(ordered.sum()) / n
        outside = 0
        if params.low is not None:
            outside += int(np.searchsorted(ordered, params.low, side="left"))
        if params.high is not None:
            outside += n - int(np.searchsorted(ordered, params.high, side="right"))
        outside_fraction = outside / n
        spread = max(reference.std, 1e-12 * max(1.0, abs(reference.mean)))
        error = spread * math.sqrt(1.0 / n + 1.0 / reference.count)
        z = (mean - reference.mean) / error
        out_of_range = outside_fraction > params.max_outside_fraction
        out_of_band = abs(z) > params.k
        if out_of_range or out_of_band:
            level = DriftState.DRIFT
        else:
            level = DriftState.WARNING if abs(z) > params.warning_k else DriftState.NONE
        reason = "hard_range" if out_of_range else "mean_band" if out_of_band else None
        details = {
            "reason": reason,
            "mean_before": reference.mean,
            "mean_after": mean,
            "band_low": reference.mean - params.k * error,
            "band_high": reference.mean + params.k * error,
            "range_low": params.low,
            "range_high": params.high,
            "outside_fraction": outside_fraction,
            "max_outside_fraction": params.max_outside_fraction,
        }
        return Verdict(level, z, params.k, None, details)
