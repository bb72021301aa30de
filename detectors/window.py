"""Reference-window tests: compare the last window of values with a reference profile.

Numeric: Population Stability Index (``"psi"``) and Kolmogorov-Smirnov (``"ks"``).
Categorical: Jensen-Shannon distance (``"jensen_shannon"``) and the chi-square test of
homogeneity (``"chi_square"``). Each is built with a reference profile (training data) or
profiles its first ``warmup`` values. Categories absent from the reference fall into one
``"<unseen>"`` bucket, i.e. mass the reference does not have.

>>> rng = np.random.default_rng(7)
>>> ks = KolmogorovSmirnov()  # windows of 500, evaluated every 50 values
>>> stream = np.concatenate((rng.normal(0, 1, 3000), rng.normal(1, 1, 1000)))
>>> states = ks.update_many(stream)
>>> int(np.argmax(states == DriftState.DRIFT))  # the mean moves at index 3000
3099
>>> r = ks.result()
>>> r.p_value < 1e-4, round(r.details["mean_after"], 1)
(True, 1.0)
"""

from __future__ import annotations

import functools
import math
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
from scipy import special

from detectors._checks import require_int, require_real
from detectors._windowing import Verdict, WindowedDetector, WindowParams
from detectors.base import DriftState, Params
from detectors.budget import (
    CALIBRATION_DRAWS,
    ScaledChi2,
    evaluation_tail,
    fit_scaled_chi2,
    two_sample_draws,
)
from detectors.profile import (
    QUANTILE_LEVELS,
    UNSEEN,
    CategoricalProfile,
    NumericProfile,
    Profile,
    category_key,
)

__all__ = [
    "ChiSquare",
    "ChiSquareParams",
    "JensenShannon",
    "JensenShannonParams",
    "KolmogorovSmirnov",
    "KolmogorovSmirnovParams",
    "PopulationStability",
    "PopulationStabilityParams",
]

#: Quantile levels reported before/after by the numeric tests.
_REPORTED_LEVELS = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
#: Categories listed in a categorical result (those whose share moved most).
_REPORTED_CATEGORIES = 20


def _floats(values: npt.NDArray[np.float64]) -> list[float]:
    return values.tolist()  # type: ignore[no-any-return]


class _SortedQuantiles:
    """Linear-interpolation quantiles (numpy's default method) of sorted arrays of one size."""

    def __init__(self, size: int, levels: npt.NDArray[np.float64]) -> None:
        position = levels * (size - 1)
        self._lo = np.floor(position).astype(np.intp)
        self._hi = np.minimum(self._lo + 1, size - 1)
        self._frac = position - self._lo

    def __call__(self, ordered: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        low = ordered[self._lo]
        result: npt.NDArray[np.float64] = low + self._frac * (ordered[self._hi] - low)
        return result


@functools.lru_cache(maxsize=64)
def _reported_quantiles(size: int) -> _SortedQuantiles:
    """The reported quantiles of windows of ``size`` values (read-only: shared by every
    window test of that size)."""
    return _SortedQuantiles(size, _REPORTED_LEVELS)


class _RecentReferences:
    """The last few reference profiles built from warm-ups, by warm-up content.

    The window tests of one signal (PSI and KS; Jensen-Shannon and chi-square) warm up on
    the same values and finish together: the second one gets the profile the first one
    built (profiles are immutable), so it is computed and held in memory once.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], Profile] = OrderedDict()

    def get(self, key: tuple[Any, ...], build: Callable[[], Profile]) -> Profile:
        profile = self._items.get(key)
        if profile is None:
            profile = self._items[key] = build()
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return profile


_RECENT_REFERENCES: Final = _RecentReferences(8)


#: With a calibrated threshold the warning level is at ten times the drift tail probability.
_WARNING_FACTOR: Final = 10.0
#: Chi-square cells expected to hold fewer window values than this are pooled into one.
_MIN_EXPECTED: Final = 5.0


def _check_run_length(params: Params) -> None:
    value = getattr(params, "run_length")  # noqa: B009 - every budgeted params class has it
    if value is not None:
        require_real(params, "run_length", low=1.0)


def _tails(run_length: float, step: int) -> tuple[float, float]:
    """(drift, warning) tail probabilities per evaluation for a detector's run length."""
    tail = evaluation_tail(run_length, step)
    return tail, min(0.5, tail * _WARNING_FACTOR)


def _mean_shift(after: float, before: float, spread: float) -> float | None:
    return (after - before) / spread if spread > 0 else None


#: Null fits kept by the calibrations (a few hundred bytes each): the quantile bins of every
#: numeric feature hold equal reference shares, so all the models of a process share a fit.
_NULL_FITS: Final = 256


@functools.lru_cache(maxsize=_NULL_FITS)
def _psi_null(
    shares: tuple[float, ...], n_reference: int, n_window: int, epsilon: float
) -> ScaledChi2:
    """PSI's null distribution for reference bin ``shares`` (the unseen bucket last, 0):
    reference and window redrawn from them (seeded), scaled chi-square fitted to the draws.
    Cached: the draws take ~2.5 ms and depend only on these arguments."""
    refs, wins = two_sample_draws(np.array(shares), 0.0, n_reference, n_window)
    p = np.maximum(refs[:, :-1] / n_reference, epsilon)
    q = np.maximum(wins[:, :-1] / n_window, epsilon)
    return fit_scaled_chi2(np.sum((q - p) * np.log(q / p), axis=1))


@functools.lru_cache(maxsize=_NULL_FITS)
def _jensen_shannon_null(
    shares: tuple[float, ...], missing_mass: float, n_reference: int, n_window: int
) -> ScaledChi2:
    """The Jensen-Shannon divergence's null distribution for reference category ``shares``
    and the mass the reference missed, fitted as :func:`_psi_null` is (and cached)."""
    refs, wins = two_sample_draws(np.array(shares), missing_mass, n_reference, n_window)
    p = refs / refs.sum(axis=1, keepdims=True)
    q = wins / wins.sum(axis=1, keepdims=True)
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / mid), 0.0) + np.where(
            q > 0, q * np.log2(q / mid), 0.0
        )
    return fit_scaled_chi2(np.maximum(0.5 * terms.sum(axis=1), 0.0))


def _scaled_sf(calibration: dict[str, Any], value: float) -> float:
    """Tail probability of ``value`` under the fitted scaled chi-square."""
    return float(special.chdtrc(calibration["dof"], value / calibration["scale"]))


def _level(exceeds_drift: bool, exceeds_warning: bool) -> DriftState:
    if exceeds_drift:
        return DriftState.DRIFT
    return DriftState.WARNING if exceeds_warning else DriftState.NONE


# -- numeric ---------------------------------------------------------------------------


class _NumericReference:
    """What the numeric tests derive from a reference profile, read-only: the PSI and KS
    tests of one signal (and equal profiles anywhere) share one copy."""

    __slots__ = ("bounds", "cdf", "quantiles", "reported", "share")

    def __init__(self, reference: NumericProfile) -> None:
        # bin edges for searchsorted: -inf/+inf around the inner edges count 0 and n
        self.bounds = _read_only(np.concatenate(([-np.inf], reference.inner_edges, [np.inf])))
        self.share = _read_only(reference.proportions)
        #: the reference CDF (KS), shared with the signal's quantile transform
        self.cdf = shared_cdf(np.asarray(reference.quantiles, dtype=np.float64))
        self.quantiles = self.cdf.quantiles
        self.reported = _floats(np.interp(_REPORTED_LEVELS, QUANTILE_LEVELS, self.quantiles))


def _read_only(array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=64)
def _numeric_reference(reference: NumericProfile) -> _NumericReference:
    """The derived arrays of ``reference`` (profiles are immutable and compare by value)."""
    return _NumericReference(reference)


@dataclass(frozen=True, slots=True)
class NumericWindowParams(WindowParams):
    #: Histogram bins of a reference built from the warm-up (quantile edges).
    bins: int = 10

    def validate(self) -> None:
        WindowParams.validate(self)
        require_int(self, "bins", minimum=2, maximum=1000)


class NumericWindowTest(WindowedDetector):
    """Numeric values (finite reals and bools) against a :class:`NumericProfile`."""

    _params: NumericWindowParams
    _reference: NumericProfile | None
    warm_typecode: ClassVar[str | None] = "d"
    ring_key: ClassVar[str | None] = "numeric"  # the ring holds the values themselves

    def _prepare(
        self, values: list[Any] | npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            array = values.astype(np.float64).ravel()
            ok = np.isfinite(array)
            return (array, None) if ok.all() else (array[ok], ok)
        accept = self._accept
        mask = np.fromiter((accept(v) for v in values), dtype=np.bool_, count=len(values))
        kept = [float(v) for v, keep in zip(values, mask, strict=True) if keep]
        return np.asarray(kept, dtype=np.float64), (None if mask.all() else mask)

    def _build_reference(self, warm: npt.NDArray[Any]) -> Profile:
        bins = self._params.bins
        return _RECENT_REFERENCES.get(
            ("numeric", bins, warm.tobytes()),
            lambda: NumericProfile.from_values("warmup", warm, bins=bins),
        )

    def _check_reference(self, reference: Profile) -> None:
        if not isinstance(reference, NumericProfile):
            self._fail_reference(f"must be a numeric profile, got a {reference.kind} one")

    def _set_reference(self, reference: Profile) -> None:
        super()._set_reference(reference)
        assert isinstance(reference, NumericProfile)
        self._arrays = arrays = _numeric_reference(reference)
        self._bounds = arrays.bounds
        self._ref_share = arrays.share
        self._ref_reported = arrays.reported

    def _init_state(self) -> None:
        super()._init_state()
        self._quantiles_of = _reported_quantiles(self._params.window_size)

    def _encode(self, prepared: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return prepared

    def _shares(self, ordered: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The sorted window's share in each reference bin."""
        shares: npt.NDArray[np.float64] = np.diff(
            np.searchsorted(ordered, self._bounds, side="left")
        ) / len(ordered)
        return shares

    def _describe(
        self, ordered: npt.NDArray[np.float64], share: npt.NDArray[np.float64] | None = None
    ) -> Callable[[], dict[str, Any]]:
        """Before/after numbers of a sorted window, built when read: only the few numbers
        they need are kept (not the window), so a later read gives the same result."""
        reference = self._reference
        assert reference is not None
        n = len(ordered)
        total = float(ordered.sum())
        square = float(ordered @ ordered)
        quantiles = self._quantiles_of(ordered)
        # the bin counts need the window; their shares are divided out only when read
        below = np.searchsorted(ordered, self._bounds, "left") if share is None else None
        ref_reported, ref_share = self._ref_reported, self._ref_share

        def details() -> dict[str, Any]:
            shares = np.diff(below) / n if below is not None else share
            assert shares is not None
            mean = total / n
            variance = max(square / n - mean * mean, 0.0)
            return {
                "mean_before": reference.mean,
                "mean_after": mean,
                "mean_shift_sd": _mean_shift(mean, reference.mean, reference.std),
                "std_before": reference.std,
                "std_after": math.sqrt(variance),
                "quantile_levels": _floats(_REPORTED_LEVELS),
                "quantiles_before": ref_reported,
                "quantiles_after": _floats(quantiles),
                "bin_edges": list(reference.edges),
                "proportions_before": _floats(ref_share),
                "proportions_after": _floats(shares),
            }

        return details


@dataclass(frozen=True, slots=True)
class PopulationStabilityParams(NumericWindowParams):
    """PSI thresholds: the usual reading is < 0.1 stable, 0.1-0.25 moderate, > 0.25 shifted.

    ``epsilon`` floors empty bin shares so that the log ratio stays finite. With a
    ``run_length`` (mean values between false alarms, from the model's budget) the drift
    threshold is calibrated for the reference instead (``threshold``/``warning_threshold``
    are then unused) and ``floor`` is an additional effect-size gate: drift also needs
    PSI >= ``floor``.
    """

    threshold: float = 0.25
    warning_threshold: float = 0.1
    epsilon: float = 1e-4
    run_length: float | None = None
    floor: float = 0.0

    def validate(self) -> None:
        NumericWindowParams.validate(self)
        _check_run_length(self)
        require_real(self, "floor", low=0.0)
        require_real(self, "threshold", low=0.0, low_open=True)
        require_real(self, "warning_threshold", low=0.0, high=self.threshold, low_open=True)
        require_real(self, "epsilon", low=0.0, high=0.01, low_open=True)


class PopulationStability(NumericWindowTest):
    """Population Stability Index of the window's shares in the reference's quantile bins.

    ``PSI = sum (q - p) · ln(q / p)`` over bins, ``p`` the reference share and ``q`` the
    window's; drift when it exceeds ``threshold``.

    >>> rng = np.random.default_rng(1)
    >>> psi = PopulationStability()
    >>> states = psi.update_many(np.concatenate((rng.normal(0, 1, 5000), rng.normal(1, 1, 2000))))
    >>> int(np.argmax(states == DriftState.DRIFT))
    5599
    >>> round(psi.result().statistic, 2)
    1.08
    """

    kind: ClassVar[str] = "psi"
    params_type: ClassVar[type[PopulationStabilityParams]] = PopulationStabilityParams
    calibration_keys: ClassVar[tuple[str, ...]] = (
        "tail",
        "threshold",
        "warning_threshold",
        "scale",
        "dof",
    )
    _params: PopulationStabilityParams

    def _set_reference(self, reference: Profile) -> None:
        super()._set_reference(reference)
        self._ref_floor = np.maximum(self._ref_share, self._params.epsilon)

    def _calibrate(self) -> dict[str, Any] | None:
        """PSI's null distribution for this reference's bins, window and stride: reference
        and window redrawn from the reference's bin shares (seeded), scaled chi-square
        fitted to the draws, its quantile at the per-evaluation tail probability."""
        params, reference = self._params, self._reference
        if params.run_length is None or reference is None:
            return None
        tail, warning_tail = _tails(params.run_length, params.step)
        shares = (*self._ref_share.tolist(), 0.0)
        fit = _psi_null(shares, reference.count, params.window_size, params.epsilon)
        return {
            "method": "bootstrap, scaled chi-square",
            "tail": tail,
            "threshold": max(fit.isf(tail), params.floor),
            "warning_threshold": max(fit.isf(warning_tail), params.floor),
            "scale": fit.scale,
            "dof": fit.dof,
            "draws": CALIBRATION_DRAWS,
        }

    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        params = self._params
        ordered = np.sort(window)
        share = self._shares(ordered)
        details = self._describe(ordered, share)
        q = np.maximum(share, params.epsilon)
        p = self._ref_floor
        psi = float(np.sum((q - p) * np.log(q / p)))
        calibration = self.calibration
        p_value = None
        if calibration is None:
            threshold, warning = params.threshold, params.warning_threshold
        else:
            threshold, warning = calibration["threshold"], calibration["warning_threshold"]
            p_value = _scaled_sf(calibration, psi)
        level = _level(psi > threshold, psi > warning)
        return Verdict(level, psi, threshold, p_value, details)


@dataclass(frozen=True, slots=True)
class KolmogorovSmirnovParams(NumericWindowParams):
    """KS significance: drift when the p-value is below ``alpha``, warning below
    ``warning_alpha``. The p-value is per evaluated window (see :mod:`detectors.policy` for
    splitting a false-alarm budget across signals). Windows of 500 evaluated every 50 values
    by default: a 1 sd mean shift is then flagged within ~200 values."""

    window_size: int = 500
    stride: int = 50
    alpha: float = 1e-4
    warning_alpha: float = 1e-3
    run_length: float | None = None

    def validate(self) -> None:
        NumericWindowParams.validate(self)
        require_real(self, "alpha", low=0.0, high=0.5, low_open=True)
        require_real(self, "warning_alpha", low=self.alpha, high=0.5)
        _check_run_length(self)


def kolmogorov_critical(alpha: float, n_window: int, n_reference: int) -> float:
    """The KS distance whose :func:`kolmogorov_p_value` is ``alpha`` (the threshold in the
    statistic's units).

    >>> d = kolmogorov_critical(1e-4, 500, 1000)
    >>> round(d, 3), round(kolmogorov_p_value(d, 500, 1000), 6)
    (0.121, 0.0001)
    """
    effective = n_window * n_reference / (n_window + n_reference)
    root = math.sqrt(effective)
    return float(special.kolmogi(alpha) / (root + 0.12 + 0.11 / root))


def kolmogorov_p_value(statistic: float, n_window: int, n_reference: int) -> float:
    """Asymptotic two-sample KS p-value (Kolmogorov distribution, Stephens' correction).

    >>> kolmogorov_p_value(0.1, 1000, 1000) < 1e-3
    True
    >>> round(kolmogorov_p_value(0.05, 1000, 1000), 3)
    0.16
    """
    effective = n_window * n_reference / (n_window + n_reference)
    root = math.sqrt(effective)
    return float(special.kolmogorov((root + 0.12 + 0.11 / root) * statistic))


def reference_cdf(
    quantiles: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    levels: npt.NDArray[np.float64] = QUANTILE_LEVELS,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The reference CDF at ``values`` from its percentiles: right and left limits.

    Between distinct percentiles the CDF is linear; where several percentiles share one value
    (a discrete feature such as a count) the CDF jumps there, so ``F(v)`` (right limit) and
    ``F(v-)`` (left limit) differ. Comparing the window's ECDF with the matching limit keeps
    the KS distance between two samples of one discrete distribution small.

    >>> q = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # levels 0, .25, .5, .75, 1
    >>> levels = np.linspace(0.0, 1.0, 5)
    >>> right, left = reference_cdf(q, np.array([-1.0, 1.0, 1.5, 2.0, 3.0]), levels)
    >>> right.tolist(), left.tolist()
    ([0.0, 0.75, 0.875, 1.0, 1.0], [0.0, 0.25, 0.875, 1.0, 1.0])
    """
    last = len(quantiles) - 1
    # right limit: interpolate from the last percentile <= v to the next one
    upper = np.clip(np.searchsorted(quantiles, values, side="right"), 1, last)
    right = _interpolate(quantiles, levels, values, upper - 1, upper)
    right = np.where(values >= quantiles[-1], 1.0, np.where(values < quantiles[0], 0.0, right))
    # left limit: interpolate from the last percentile < v to the first one >= v
    lower = np.clip(np.searchsorted(quantiles, values, side="left") - 1, 0, last - 1)
    left = _interpolate(quantiles, levels, values, lower, lower + 1)
    left = np.where(values > quantiles[-1], 1.0, np.where(values <= quantiles[0], 0.0, left))
    return right, left


def _interpolate(
    quantiles: npt.NDArray[np.float64],
    levels: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    lower: npt.NDArray[np.intp],
    upper: npt.NDArray[np.intp],
) -> npt.NDArray[np.float64]:
    q_low, span = quantiles[lower], quantiles[upper] - quantiles[lower]
    fraction = np.divide(values - q_low, span, out=np.zeros_like(values), where=span > 0)
    return levels[lower] + np.clip(fraction, 0.0, 1.0) * (levels[upper] - levels[lower])


#: Steps between the percentile levels of every profile (shared by every reference CDF).
_QUANTILE_RISE: Final = _read_only(QUANTILE_LEVELS[1:] - QUANTILE_LEVELS[:-1])

_ECDF_STEPS: dict[int, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}


def _ecdf_steps(n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(i / n, (i + 1) / n)`` for i < n: the ECDF of n sorted values just before and at
    each one; read-only and shared by every detector with windows of ``n`` values."""
    steps = _ECDF_STEPS.get(n)
    if steps is None:
        low, high = np.arange(0, n) / n, np.arange(1, n + 1) / n
        low.flags.writeable = high.flags.writeable = False
        steps = _ECDF_STEPS[n] = (low, high)
    return steps


class _ReferenceCdf:
    """:func:`reference_cdf` for one reference, with what depends only on the reference
    computed once and the left limit taken from the right one (they differ only at a
    percentile value): the same values for a fraction of the per-window cost (KS evaluates
    it on every window; a unit test checks both agree)."""

    def __init__(
        self, quantiles: npt.NDArray[np.float64], levels: npt.NDArray[np.float64] = QUANTILE_LEVELS
    ) -> None:
        self._quantiles = quantiles
        self._levels = levels
        self._last = len(quantiles) - 1
        self._span = quantiles[1:] - quantiles[:-1]  # quantiles[i + 1] - quantiles[i]
        self._rise = _QUANTILE_RISE if levels is QUANTILE_LEVELS else levels[1:] - levels[:-1]
        positive = self._span > 0
        #: Whether the percentiles are all distinct: the CDF has no jump, ``F(v-) == F(v)``
        #: everywhere (:meth:`right` is then all there is to compute).
        self.continuous = bool(positive.all())
        self._low, self._high = quantiles[0], quantiles[-1]
        # only a CDF with jumps needs these (kept per reference, for hundreds of models)
        self._positive = None if self.continuous else positive
        #: level of the first percentile equal to each one (the CDF's left limit there)
        self._first_level = (
            None if self.continuous else levels[np.searchsorted(quantiles, quantiles, side="left")]
        )

    @property
    def quantiles(self) -> npt.NDArray[np.float64]:
        """The percentiles this CDF interpolates."""
        return self._quantiles

    def _interpolate(
        self, values: npt.NDArray[np.float64], lower: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        if self.continuous:  # every span is positive: no zero span to leave at 0
            fraction = values - self._quantiles[lower]
            fraction /= self._span[lower]
        else:
            assert self._positive is not None
            fraction = np.zeros_like(values)
            np.divide(
                values - self._quantiles[lower],
                self._span[lower],
                out=fraction,
                where=self._positive[lower],
            )
        np.maximum(fraction, 0.0, out=fraction)  # np.clip's result, without its wrapper
        np.minimum(fraction, 1.0, out=fraction)
        fraction *= self._rise[lower]
        fraction += self._levels[lower]
        return fraction

    def right(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``F(v)`` at ``values`` (the first half of ``self(values)``)."""
        return self._right(values, np.searchsorted(self._quantiles, values, side="right"))

    def _right(
        self, values: npt.NDArray[np.float64], upper: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        segment = np.maximum(upper, 1)  # np.clip(upper, 1, last) - 1, a third of the time
        np.minimum(segment, self._last, out=segment)
        segment -= 1
        right = self._interpolate(values, segment)
        right[values < self._low] = 0.0
        right[values >= self._high] = 1.0
        return right

    def __call__(
        self, values: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(F(v), F(v-))`` at ``values``, as :func:`reference_cdf` gives them."""
        quantiles = self._quantiles
        upper = np.searchsorted(quantiles, values, side="right")  # first percentile > v
        right = self._right(values, upper)
        if self.continuous:
            return right, right
        # F(v-) equals F(v) but where v is a percentile value: there the CDF may jump, and
        # its left limit is the level of the first percentile with that value
        knot = np.maximum(upper - 1, 0)
        assert self._first_level is not None
        left = np.where(quantiles[knot] == values, self._first_level[knot], right)
        return right, left


def shared_cdf(quantiles: npt.NDArray[np.float64]) -> _ReferenceCdf:
    """The reference CDF of ``quantiles`` (at :data:`QUANTILE_LEVELS`), one read-only copy for
    every holder of equal percentiles: a signal's quantile transform and its KS test warm up
    on the same values, so hundreds of models do not each keep two."""
    return _cdf_of(np.asarray(quantiles, dtype=np.float64).tobytes())


@functools.lru_cache(maxsize=64)
def _cdf_of(key: bytes) -> _ReferenceCdf:
    return _ReferenceCdf(np.frombuffer(key, dtype=np.float64))  # (read-only: a bytes view)


class KolmogorovSmirnov(NumericWindowTest):
    """Kolmogorov-Smirnov distance between the window's ECDF and the reference CDF.

    The reference CDF is linear between the profile's percentiles; the p-value treats the
    reference as a sample of ``reference.count`` values (two-sample asymptotics), so a
    reference learned from a short warm-up is not over-trusted.
    """

    kind: ClassVar[str] = "ks"
    params_type: ClassVar[type[KolmogorovSmirnovParams]] = KolmogorovSmirnovParams
    calibration_keys: ClassVar[tuple[str, ...]] = ("tail", "warning_tail", "threshold")
    _params: KolmogorovSmirnovParams

    def _init_state(self) -> None:
        super()._init_state()
        self._steps_lo, self._steps_hi = _ecdf_steps(self._params.window_size)

    def _set_reference(self, reference: Profile) -> None:
        super()._set_reference(reference)
        self._cdf = self._arrays.cdf

    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        assert self._reference is not None
        params = self._params
        ordered = np.sort(window)
        above, below = self._cdf(ordered)
        statistic = float(max((self._steps_hi - above).max(), (below - self._steps_lo).max()))
        p_value = kolmogorov_p_value(statistic, len(ordered), self._reference.count)
        details = self._describe(ordered)
        calibration = self.calibration
        alpha, warning_alpha = (
            (params.alpha, params.warning_alpha)
            if calibration is None
            else (calibration["tail"], calibration["warning_tail"])
        )
        level = _level(p_value < alpha, p_value < warning_alpha)
        threshold = (
            calibration["threshold"]
            if calibration is not None
            else kolmogorov_critical(alpha, len(ordered), self._reference.count)
        )
        return Verdict(level, statistic, threshold, p_value, details)

    def _calibrate(self) -> dict[str, Any] | None:
        """Analytic: the Kolmogorov distribution for a window of ``window_size`` values
        against a reference sample of ``reference.count`` values."""
        params, reference = self._params, self._reference
        if params.run_length is None or reference is None:
            return None
        tail, warning_tail = _tails(params.run_length, params.step)
        return {
            "method": "kolmogorov (two-sample)",
            "tail": tail,
            "warning_tail": warning_tail,
            "threshold": kolmogorov_critical(tail, params.window_size, reference.count),
        }


# -- categorical -----------------------------------------------------------------------


class _CategoricalWindowTest(WindowedDetector):
    """Categories (strings, bools, integers) against a :class:`CategoricalProfile`."""

    code_dtype: type[np.generic] = np.int32  # category indices (narrowed per reference)
    _reference: CategoricalProfile | None

    def _accept(self, value: Any) -> bool:
        return category_key(value) is not None

    def _prepare(
        self, values: list[Any] | npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
        if isinstance(values, np.ndarray) and values.dtype.kind == "U":
            return values.ravel().astype(object), None
        if set(map(type, values)) <= {str}:  # the common case: category names, no conversion
            if isinstance(values, np.ndarray):
                return values.ravel(), None
            strings = np.empty(len(values), dtype=object)
            strings[:] = values
            return strings, None
        keys = [category_key(v) for v in values]
        mask = np.fromiter((k is not None for k in keys), dtype=np.bool_, count=len(keys))
        kept = np.empty(int(mask.sum()), dtype=object)
        kept[:] = [k for k in keys if k is not None]
        return kept, (None if mask.all() else mask)

    def _warm_kept(self, values: list[Any]) -> list[Any]:
        # every event decodes its own copy of a category's name: ~50 bytes per warm-up
        # value, 1 000 per test, hundreds of models; interned, a name is held once (the
        # interpreter drops an interned string with its last reference)
        return [sys.intern(v) if type(v) is str else v for v in values]

    def _build_reference(self, warm: npt.NDArray[Any]) -> Profile:
        values = warm.tolist()
        return _RECENT_REFERENCES.get(
            ("categorical", tuple(values)),
            lambda: CategoricalProfile.from_values("warmup", values),
        )

    def _check_reference(self, reference: Profile) -> None:
        if not isinstance(reference, CategoricalProfile):
            self._fail_reference(f"must be a categorical profile, got a {reference.kind} one")

    def _set_reference(self, reference: Profile) -> None:
        if isinstance(reference, CategoricalProfile):  # (others: refused by the base)
            # codes 0..n, n for a category the reference lacks: a byte each up to 255
            # categories (the window of 1 000 values: 1 KB instead of 4)
            self.code_dtype = np.min_scalar_type(len(reference.counts)).type
        super()._set_reference(reference)
        assert isinstance(reference, CategoricalProfile)
        self._names = [*reference.categories, UNSEEN]
        self._index = {name: i for i, name in enumerate(reference.categories)}
        self._ref_counts = np.asarray(
            [*(reference.counts[c] for c in reference.categories), 0], dtype=np.float64
        )
        self._ref_share = self._ref_counts / self._ref_counts.sum()

    def _missing_mass(self) -> float:
        """Good-Turing estimate of the share of values in categories the reference missed:
        the share of its values whose category it saw once."""
        counts = self._ref_counts[:-1]
        return float(np.count_nonzero(counts == 1) / max(1.0, counts.sum()))

    def _valid_warm(self, value: Any) -> bool:
        return isinstance(value, str)

    def _valid_code(self, code: Any) -> bool:
        n_codes = len(self._names) if self._reference is not None else 0
        return not isinstance(code, bool) and isinstance(code, int) and 0 <= code < n_codes

    def _encode(self, prepared: npt.NDArray[Any]) -> npt.NDArray[Any]:
        codes = map(self._index.get, prepared, repeat(len(self._index)))
        return np.fromiter(codes, dtype=self.code_dtype, count=len(prepared))

    def _window_counts(self, window: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return np.bincount(window, minlength=len(self._names)).astype(np.float64)

    def _describe(
        self, share: npt.NDArray[np.float64], **extra: Any
    ) -> Callable[[], dict[str, Any]]:
        """The categories whose share moved most, built when read (``share`` is kept)."""
        names, ref_share = self._names, self._ref_share

        def details() -> dict[str, Any]:
            moved = np.argsort(-np.abs(share - ref_share), kind="stable")
            shown = sorted(moved[:_REPORTED_CATEGORIES].tolist())
            return {
                "moved_share": 0.5 * float(np.abs(share - ref_share).sum()),
                "categories": [names[i] for i in shown],
                "proportions_before": _floats(ref_share[shown]),
                "proportions_after": _floats(share[shown]),
                "unseen_fraction": float(share[-1]),
                **extra,
            }

        return details


@dataclass(frozen=True, slots=True)
class JensenShannonParams(WindowParams):
    """Drift when the Jensen-Shannon distance (base 2, in [0, 1]) exceeds ``threshold``.

    With a ``run_length`` the threshold is calibrated for the reference, window and stride
    instead, and ``floor`` is an additional effect-size gate (distance >= ``floor``).
    """

    threshold: float = 0.1
    warning_threshold: float = 0.05
    run_length: float | None = None
    floor: float = 0.0

    def validate(self) -> None:
        WindowParams.validate(self)
        require_real(self, "threshold", low=0.0, high=1.0, low_open=True)
        require_real(self, "warning_threshold", low=0.0, high=self.threshold, low_open=True)
        _check_run_length(self)
        require_real(self, "floor", low=0.0, high=1.0)


class JensenShannon(_CategoricalWindowTest):
    """Jensen-Shannon distance between reference and window category shares.

    Bounded and finite even when the window holds unseen categories (no smoothing needed).

    >>> js = JensenShannon(JensenShannonParams(window_size=500, warmup=1000))
    >>> rng = np.random.default_rng(3)
    >>> before = rng.choice(["a", "b", "c"], 2000, p=[0.6, 0.3, 0.1])
    >>> after = rng.choice(["a", "b", "c"], 1000, p=[0.3, 0.3, 0.4])
    >>> states = js.update_many(np.concatenate((before, after)).tolist())
    >>> int(np.argmax(states == DriftState.DRIFT))
    2199
    """

    kind: ClassVar[str] = "jensen_shannon"
    params_type: ClassVar[type[JensenShannonParams]] = JensenShannonParams
    calibration_keys: ClassVar[tuple[str, ...]] = (
        "tail",
        "threshold",
        "warning_threshold",
        "scale",
        "dof",
    )
    _params: JensenShannonParams

    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        params = self._params
        share = self._window_counts(window) / len(window)
        p, q = self._ref_share, share
        mid = (p + q) / 2
        divergence = 0.0
        for dist in (p, q):
            nz = dist > 0
            divergence += 0.5 * float(np.sum(dist[nz] * np.log2(dist[nz] / mid[nz])))
        distance = math.sqrt(max(divergence, 0.0))
        calibration = self.calibration
        p_value = None
        if calibration is None:
            threshold, warning = params.threshold, params.warning_threshold
        else:
            threshold, warning = calibration["threshold"], calibration["warning_threshold"]
            p_value = _scaled_sf(calibration, distance * distance)
        level = _level(distance > threshold, distance > warning)
        return Verdict(level, distance, threshold, p_value, self._describe(share))

    def _calibrate(self) -> dict[str, Any] | None:
        """The distance's null distribution for this reference (its categories, their
        shares and the mass it missed), window and stride: reference and window redrawn
        (seeded), scaled chi-square fitted to the squared distances (the divergence)."""
        params, reference = self._params, self._reference
        if params.run_length is None or reference is None:
            return None
        tail, warning_tail = _tails(params.run_length, params.step)
        shares = tuple(self._ref_share.tolist())
        fit = _jensen_shannon_null(
            shares, self._missing_mass(), reference.count, params.window_size
        )
        return {
            "method": "bootstrap, scaled chi-square",
            "tail": tail,
            "threshold": max(math.sqrt(fit.isf(tail)), params.floor),
            "warning_threshold": max(math.sqrt(fit.isf(warning_tail)), params.floor),
            "scale": fit.scale,
            "dof": fit.dof,
            "draws": CALIBRATION_DRAWS,
        }


@dataclass(frozen=True, slots=True)
class ChiSquareParams(WindowParams):
    """Drift when the homogeneity test's p-value is below ``alpha`` (warning: ``warning_alpha``);
    with a ``run_length`` ``alpha`` is the per-evaluation share of the budget instead."""

    alpha: float = 1e-4
    warning_alpha: float = 1e-3
    run_length: float | None = None

    def validate(self) -> None:
        WindowParams.validate(self)
        require_real(self, "alpha", low=0.0, high=0.5, low_open=True)
        require_real(self, "warning_alpha", low=self.alpha, high=0.5)
        _check_run_length(self)


class ChiSquare(_CategoricalWindowTest):
    """Chi-square test of homogeneity of the reference counts and the window counts.

    Both are treated as samples (a 2xK table, K categories plus "unseen"); categories seen
    by neither are left out, so no expected count is zero. With a large training reference
    this is the goodness-of-fit test against the reference shares.

    >>> chi = ChiSquare(ChiSquareParams(window_size=500, warmup=1000))
    >>> rng = np.random.default_rng(3)
    >>> before = rng.choice([1, 2, 3], 2000, p=[0.6, 0.3, 0.1])
    >>> after = rng.choice([1, 2, 3, 4], 1000, p=[0.5, 0.3, 0.1, 0.1])
    >>> states = chi.update_many(np.concatenate((before, after)))
    >>> int(np.argmax(states == DriftState.DRIFT))
    2099
    >>> chi.result().details["unseen_fraction"]
    0.09
    """

    kind: ClassVar[str] = "chi_square"
    params_type: ClassVar[type[ChiSquareParams]] = ChiSquareParams
    calibration_keys: ClassVar[tuple[str, ...]] = ("tail", "warning_tail")
    _params: ChiSquareParams

    def _set_reference(self, reference: Profile) -> None:
        super()._set_reference(reference)
        # cells the window is expected to fill with fewer than 5 values (rare categories
        # and the unseen bucket) are pooled into one, where the chi-square law holds
        expected = self._ref_share * self._params.window_size
        rare = expected < _MIN_EXPECTED
        rare[-1] = True
        kept = np.flatnonzero(~rare)
        self._cells = np.full(len(expected), len(kept), dtype=np.intp)
        self._cells[kept] = np.arange(len(kept))
        self._n_cells = len(kept) + 1
        self._pooled_ref = np.bincount(self._cells, self._ref_counts, self._n_cells)

    def _calibrate(self) -> dict[str, Any] | None:
        """Analytic: chi-square with (cells - 1) degrees of freedom after pooling."""
        params = self._params
        if params.run_length is None or self._reference is None:
            return None
        tail, warning_tail = _tails(params.run_length, params.step)
        return {"method": "chi-square (pooled cells)", "tail": tail, "warning_tail": warning_tail}

    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        params = self._params
        all_counts = self._window_counts(window)
        counts = np.bincount(self._cells, all_counts, self._n_cells)
        ref = self._pooled_ref
        total = ref + counts
        used = total > 0
        total, ref, counts = total[used], ref[used], counts[used]
        n_ref, n_win = ref.sum(), counts.sum()
        grand = n_ref + n_win
        expected_ref = total * (n_ref / grand)
        expected_win = total * (n_win / grand)
        statistic = float(
            np.sum((ref - expected_ref) ** 2 / expected_ref)
            + np.sum((counts - expected_win) ** 2 / expected_win)
        )
        dof = len(total) - 1
        p_value = float(special.chdtrc(dof, statistic)) if dof > 0 else 1.0
        calibration = self.calibration
        alpha, warning_alpha = (
            (params.alpha, params.warning_alpha)
            if calibration is None
            else (calibration["tail"], calibration["warning_tail"])
        )
        level = _level(p_value < alpha, p_value < warning_alpha)
        threshold = float(special.chdtri(dof, alpha)) if dof > 0 else math.inf
        details = self._describe(all_counts / len(window), degrees_of_freedom=dof)
        return Verdict(level, statistic, threshold, p_value, details)
