"""Detectors for error streams (concept drift), wrapping ``river.drift.binary``.

Every detector here reads a stream of 0/1 error indicators (1: the model was wrong) and
says ``WARNING`` or ``DRIFT`` when the error rate rises. Values other than 0/1 (or bools)
are rejected and counted. The detector starts afresh on the value after a drift, as river
does.
"""

# The snapshot is river's private state, read and rebuilt explicitly:
# ruff: noqa: SLF001

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from river import stats
from river.drift import binary
from river.drift.binary.hddm_w import SampleInfo

from detectors._checks import require_bool, require_int, require_real
from detectors._river import (
    RiverDetector,
    float_from_data,
    float_to_data,
    int_from_data,
    mean_from_data,
    mean_to_data,
)
from detectors.base import DetectionResult, Params

__all__ = [
    "DDM",
    "EDDM",
    "FHDDM",
    "HDDMA",
    "HDDMW",
    "DDMParams",
    "EDDMParams",
    "FHDDMParams",
    "HDDMAParams",
    "HDDMWParams",
]


def _optional_float(value: float | None) -> float | str | None:
    return None if value is None else float_to_data(value)


def _optional_float_from(value: Any) -> float | None:
    return None if value is None else float_from_data(value)


# -- DDM -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DDMParams(Params):
    """DDM parameters (river's defaults): warning/drift when ``p + s`` exceeds
    ``p_min + k * s_min`` with ``k`` = ``warning_threshold`` / ``drift_threshold``, after
    ``warm_start`` values."""

    warm_start: int = 30
    warning_threshold: float = 2.0
    drift_threshold: float = 3.0

    def validate(self) -> None:
        require_int(self, "warm_start", minimum=0)
        require_real(self, "warning_threshold", low=0.0, low_open=True)
        require_real(self, "drift_threshold", low=self.warning_threshold)


class DDM(RiverDetector):
    """Drift Detection Method: the error rate ``p`` and its deviation ``s`` against their
    best (lowest) values so far.

    >>> import numpy as np
    >>> from detectors.base import DriftState
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> detector = DDM()
    >>> states = detector.update_many(errors)
    >>> np.flatnonzero(states == DriftState.DRIFT).tolist()
    [1457]
    >>> warnings = np.flatnonzero(states == DriftState.WARNING)
    >>> int(warnings[warnings >= 1000][0])  # first warning after the change
    1164
    """

    kind: ClassVar[str] = "ddm"
    params_type: ClassVar[type[Params]] = DDMParams
    binary: ClassVar[bool] = True
    has_warning: ClassVar[bool] = True
    _params: DDMParams

    def _make_river(self) -> Any:
        p = self._params
        return binary.DDM(
            warm_start=p.warm_start,
            warning_threshold=p.warning_threshold,
            drift_threshold=p.drift_threshold,
        )

    def _result(self) -> DetectionResult:
        river, p = self._river, self._params
        rate, n = river._p.get(), int(river._p.n)
        s = math.sqrt(rate * (1 - rate) / n) if n else 0.0
        p_min, s_min = river._p_min, river._s_min
        known = p_min is not None and s_min is not None
        return DetectionResult(
            state=self._state,
            updates=self._updates,
            statistic=rate + s,
            threshold=p_min + p.drift_threshold * s_min if known else None,
            details={
                "n": n,
                "error_rate": rate,
                "std": s,
                "p_min": p_min,
                "s_min": s_min,
                "warning_level": p_min + p.warning_threshold * s_min if known else None,
                "drift_level": p_min + p.drift_threshold * s_min if known else None,
            },
        )

    def _state_to_data(self) -> dict[str, Any]:
        river = self._river
        return {
            **self._flags_to_data(),
            "p": mean_to_data(river._p),
            "p_min": _optional_float(river._p_min),
            "s_min": _optional_float(river._s_min),
            "ps_min": float_to_data(river._ps_min),
        }

    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        river = self._river
        river._p = mean_from_data(data["p"])
        river._p_min = _optional_float_from(data["p_min"])
        river._s_min = _optional_float_from(data["s_min"])
        if (river._p_min is None) != (river._s_min is None):
            raise ValueError("ddm p_min and s_min must both be set or both be null")
        river._ps_min = float_from_data(data["ps_min"])
        self._flags_from_data(data)


# -- EDDM ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EDDMParams(Params):
    """EDDM parameters (river's defaults): warning when the distance-between-errors level
    falls below ``alpha``, drift below ``beta``, once ``warm_start`` errors were seen."""

    warm_start: int = 30
    alpha: float = 0.95
    beta: float = 0.9

    def validate(self) -> None:
        require_int(self, "warm_start", minimum=0)
        require_real(self, "alpha", low=0.0, high=1.0, low_open=True)
        require_real(self, "beta", low=0.0, high=self.alpha, low_open=True)


class EDDM(RiverDetector):
    """Early Drift Detection Method: drift when errors come closer together than they did.

    With river's defaults EDDM raises false alarms on stable streams (about 8 per 100 000
    values at a 20 % error rate, more early in a stream, as below); lower ``beta`` trades
    them for later detection.

    >>> import numpy as np
    >>> from detectors.base import DriftState
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> detector = EDDM()
    >>> states = detector.update_many(errors)
    >>> drifts = np.flatnonzero(states == DriftState.DRIFT)
    >>> int(drifts[drifts >= 1000][0]), int((drifts < 1000).sum())  # detection, false alarms
    (1007, 6)
    """

    kind: ClassVar[str] = "eddm"
    params_type: ClassVar[type[Params]] = EDDMParams
    binary: ClassVar[bool] = True
    has_warning: ClassVar[bool] = True
    _params: EDDMParams

    def _make_river(self) -> Any:
        p = self._params
        return binary.EDDM(warm_start=p.warm_start, alpha=p.alpha, beta=p.beta)

    def _result(self) -> DetectionResult:
        river = self._river
        distances = river._error_distances
        mean = distances.mean.get()
        std = distances.get() ** 0.5
        best = river._p2s_prime_max
        level = (mean + 2 * std) / best if best > 0 else None
        return DetectionResult(
            state=self._state,
            updates=self._updates,
            statistic=level,
            threshold=self._params.beta,
            details={
                "n": river._n,
                "errors": river._n_errors,
                "mean_distance": mean,
                "std_distance": std,
                "max_mean_plus_2std": float(best) if best > 0 else None,
                "warning_level": self._params.alpha,
                "drift_level": self._params.beta,
            },
        )

    def _state_to_data(self) -> dict[str, Any]:
        river = self._river
        distances = river._error_distances
        return {
            **self._flags_to_data(),
            "distances": {"mean": mean_to_data(distances.mean), "S": float_to_data(distances._S)},
            "n": river._n,
            "last_error": river._last_error,
            "n_errors": river._n_errors,
            "p2s_prime_max": float_to_data(river._p2s_prime_max),
        }

    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        river = self._river
        distances = stats.Var()
        distances.mean = mean_from_data(data["distances"]["mean"])
        distances._S = float_from_data(data["distances"]["S"])
        river._error_distances = distances
        river._n = int_from_data(data["n"])
        river._last_error = int_from_data(data["last_error"])
        river._n_errors = int_from_data(data["n_errors"])
        river._p2s_prime_max = float_from_data(data["p2s_prime_max"])
        self._flags_from_data(data)


# -- HDDM-A ----------------------------------------------------------------------------------


def _check_confidences(params: HDDMAParams | HDDMWParams) -> None:
    require_real(params, "drift_confidence", low=0.0, high=1.0, low_open=True, high_open=True)
    require_real(
        params,
        "warning_confidence",
        low=params.drift_confidence,
        high=1.0,
        high_open=True,
    )
    require_bool(params, "two_sided_test")


@dataclass(frozen=True, slots=True)
class HDDMAParams(Params):
    """HDDM-A parameters (river's defaults): Hoeffding-bound confidences for drift and
    warning (``warning_confidence`` >= ``drift_confidence``); ``two_sided_test`` also
    flags a falling error rate."""

    drift_confidence: float = 0.001
    warning_confidence: float = 0.005
    two_sided_test: bool = False

    def validate(self) -> None:
        _check_confidences(self)


class HDDMA(RiverDetector):
    """HDDM with moving averages: drift when the error rate rises above its lowest
    running average by more than a Hoeffding bound.

    >>> import numpy as np
    >>> from detectors.base import DriftState
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> detector = HDDMA()
    >>> states = detector.update_many(errors)
    >>> np.flatnonzero(states == DriftState.DRIFT).tolist()
    [1051]
    """

    kind: ClassVar[str] = "hddm_a"
    params_type: ClassVar[type[Params]] = HDDMAParams
    binary: ClassVar[bool] = True
    has_warning: ClassVar[bool] = True
    _params: HDDMAParams

    def _make_river(self) -> Any:
        p = self._params
        return binary.HDDMA(  # type: ignore[no-untyped-call]
            drift_confidence=p.drift_confidence,
            warning_confidence=p.warning_confidence,
            two_sided_test=p.two_sided_test,
        )

    def _result(self) -> DetectionResult:
        river = self._river
        z, low = river._z, river._x_min
        bound = None
        if 0 < low.n < z.n:
            m = (z.n - low.n) / low.n * (1.0 / z.n)
            bound = math.sqrt(m / 2 * math.log(2.0 / self._params.drift_confidence))
        return DetectionResult(
            state=self._state,
            updates=self._updates,
            statistic=z.get() - low.get() if low.n else None,
            threshold=bound,
            details={
                "n": int(z.n),
                "error_rate": z.get(),
                "min_error_rate": low.get() if low.n else None,
                "min_error_rate_n": int(low.n),
                "max_error_rate": river._x_max.get() if river._x_max.n else None,
            },
        )

    def _state_to_data(self) -> dict[str, Any]:
        river = self._river
        return {
            **self._flags_to_data(),
            "x_min": mean_to_data(river._x_min),
            "x_max": mean_to_data(river._x_max),
            "z": mean_to_data(river._z),
        }

    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        river = self._river
        river._x_min = mean_from_data(data["x_min"])
        river._x_max = mean_from_data(data["x_max"])
        river._z = mean_from_data(data["z"])
        self._flags_from_data(data)


# -- HDDM-W ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HDDMWParams(Params):
    """HDDM-W parameters (river's defaults): McDiarmid-bound confidences as in HDDM-A and
    ``lambda_val``, the weight of recent values in the exponentially weighted averages."""

    drift_confidence: float = 0.001
    warning_confidence: float = 0.005
    lambda_val: float = 0.05
    two_sided_test: bool = False

    def validate(self) -> None:
        _check_confidences(self)
        require_real(self, "lambda_val", low=0.0, high=1.0, low_open=True)


def _sample_to_data(sample: SampleInfo) -> dict[str, Any]:
    return {
        "ewma": float_to_data(sample.ewma) if sample._is_init else None,
        "ibc": float_to_data(sample._ibc),
    }


def _sample_from_data(data: Mapping[str, Any], lambda_val: float) -> SampleInfo:
    sample = SampleInfo(lambda_val)
    if data["ewma"] is not None:
        # river's EWMean takes its first value as the mean exactly: this restores it bit-for-bit
        sample._ewma.update(float_from_data(data["ewma"]))
        sample._is_init = True
    sample._ibc = float_from_data(data["ibc"])
    return sample


_HDDMW_SAMPLES = ("total", "s1_decr", "s1_incr", "s2_decr", "s2_incr")


class HDDMW(RiverDetector):
    """HDDM with weighted (EWMA) averages: reacts faster to recent errors than HDDM-A.

    >>> import numpy as np
    >>> from detectors.base import DriftState
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> detector = HDDMW()
    >>> states = detector.update_many(errors)
    >>> np.flatnonzero(states == DriftState.DRIFT).tolist()
    [1040]
    """

    kind: ClassVar[str] = "hddm_w"
    params_type: ClassVar[type[Params]] = HDDMWParams
    binary: ClassVar[bool] = True
    has_warning: ClassVar[bool] = True
    _params: HDDMWParams

    def _make_river(self) -> Any:
        p = self._params
        return binary.HDDMW(  # type: ignore[no-untyped-call]
            drift_confidence=p.drift_confidence,
            warning_confidence=p.warning_confidence,
            lambda_val=p.lambda_val,
            two_sided_test=p.two_sided_test,
        )

    def _result(self) -> DetectionResult:
        river = self._river
        before, after = river._s1_incr, river._s2_incr
        known = before._is_init and after._is_init
        bound = (
            river._mcdiarmid_bound(before.ibc + after.ibc, self._params.drift_confidence)
            if known
            else None
        )
        return DetectionResult(
            state=self._state,
            updates=self._updates,
            statistic=after.ewma - before.ewma if known else None,
            threshold=bound,
            details={
                "error_rate_ewma": river._total.ewma if river._total._is_init else None,
                "ewma_before": before.ewma if before._is_init else None,
                "ewma_after": after.ewma if after._is_init else None,
            },
        )

    def _state_to_data(self) -> dict[str, Any]:
        river = self._river
        return {
            **self._flags_to_data(),
            **{name: _sample_to_data(getattr(river, f"_{name}")) for name in _HDDMW_SAMPLES},
            "incr_cutpoint": float_to_data(river._incr_cutpoint),
            "decr_cutpoint": float_to_data(river._decr_cutpoint),
        }

    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        river, lambda_val = self._river, self._params.lambda_val
        for name in _HDDMW_SAMPLES:
            setattr(river, f"_{name}", _sample_from_data(data[name], lambda_val))
        river._incr_cutpoint = float_from_data(data["incr_cutpoint"])
        river._decr_cutpoint = float_from_data(data["decr_cutpoint"])
        self._flags_from_data(data)


# -- FHDDM -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FHDDMParams(Params):
    """FHDDM parameters (river's defaults): a sliding window of ``sliding_window_size``
    values, Hoeffding ``confidence_level``, and an optional ``short_window_size`` (stacking
    FHDDM) inside it."""

    sliding_window_size: int = 100
    confidence_level: float = 0.000001
    short_window_size: int | None = None

    def validate(self) -> None:
        require_int(self, "sliding_window_size", minimum=1, maximum=1_000_000)
        require_real(self, "confidence_level", low=0.0, high=1.0, low_open=True, high_open=True)
        if self.short_window_size is not None:
            require_int(self, "short_window_size", minimum=1, maximum=self.sliding_window_size)


class FHDDM(RiverDetector):
    """Fast Hoeffding Drift Detection: drift when the accuracy in a sliding window falls
    below its best value by more than a Hoeffding bound.

    river's FHDDM (after MOA) flags a *fall* of the mean of its input, i.e. it expects
    1 = correct. This wrapper takes error indicators like the other binary detectors and
    hands river ``1 - error``, so drift means a rising error rate here too.

    >>> import numpy as np
    >>> from detectors.base import DriftState
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> detector = FHDDM()
    >>> states = detector.update_many(errors)
    >>> np.flatnonzero(states == DriftState.DRIFT).tolist()
    [1077]
    """

    kind: ClassVar[str] = "fhddm"
    params_type: ClassVar[type[Params]] = FHDDMParams
    binary: ClassVar[bool] = True
    invert: ClassVar[bool] = True
    _params: FHDDMParams

    def _make_river(self) -> Any:
        p = self._params
        return binary.FHDDM(
            sliding_window_size=p.sliding_window_size,
            confidence_level=p.confidence_level,
            short_window_size=p.short_window_size,
        )

    def _result(self) -> DetectionResult:
        river = self._river
        window = len(river._sliding_window)
        accuracy = river.n_one / window if window else None
        details: dict[str, Any] = {
            "error_rate": None if accuracy is None else 1.0 - accuracy,
            "min_error_rate": 1.0 - river._u_max if river._u_max else None,
            "epsilon": river._epsilon,
        }
        if self._params.short_window_size is not None:
            details["short_min_error_rate"] = (
                1.0 - river._u_short_max if river._u_short_max else None
            )
            details["short_epsilon"] = river._epsilon_s
        return DetectionResult(
            state=self._state,
            updates=self._updates,
            statistic=river._u_max - accuracy if accuracy is not None else None,
            threshold=river._epsilon,
            window_size=window,
            details=details,
        )

    def _state_to_data(self) -> dict[str, Any]:
        river = self._river
        data: dict[str, Any] = {
            **self._flags_to_data(),
            "window": list(river._sliding_window),
            "n_one": river.n_one,
            "u_max": float_to_data(river._u_max),
        }
        if self._params.short_window_size is not None:
            data["u_short_max"] = float_to_data(river._u_short_max)
        return data

    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        river = self._river
        window = [int_from_data(v) for v in data["window"]]
        if len(window) >= self._params.sliding_window_size or max(window, default=0) > 1:
            raise ValueError("fhddm window is longer than sliding_window_size or not 0/1")
        river._sliding_window = collections.deque(window, maxlen=self._params.sliding_window_size)
        river.n_one = int_from_data(data["n_one"])
        if river.n_one != sum(window):
            raise ValueError("fhddm n_one does not match its window")
        river._u_max = float_from_data(data["u_max"])
        if self._params.short_window_size is not None:
            river._u_short_max = float_from_data(data["u_short_max"])
        self._flags_from_data(data)
