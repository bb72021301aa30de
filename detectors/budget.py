"""The false-alarm budget: from a mean run length between false alarms to thresholds.

A model's ``alarms.expected_run_time`` (mean events between two false alarms, across all
its detectors) is split equally over its ``n`` detectors: each gets a *run length* of
``expected_run_time * n`` of its own updates. This module turns a run length into each
detector's sensitivity:

* **window tests** evaluated every ``step`` values may exceed their threshold on an
  evaluation with probability ``step / run_length`` (a union bound over evaluations:
  overlapping windows are positively correlated, so the real rate is lower);
* **ADWIN** ``delta`` and **Page-Hinkley** ``threshold`` come from run lengths (times
  :data:`SEQUENTIAL_MARGIN`) measured by simulation
  (``python -m benchmarks.calibrate_sequential`` wrote :mod:`detectors._sequential_fit`)
  on uniform values, which is what every continuous
  feature becomes through the reference's quantile transform
  (:mod:`detectors.transform`);
* **tests with a per-update significance** (KSWIN, HDDM, FHDDM, DDM's z) get
  ``1 / run_length``.

Where the null distribution of a statistic has no closed form (PSI, Jensen-Shannon), it is
simulated from the reference (:func:`two_sample_draws`) and a scaled chi-square is fitted to
the draws by moments (:func:`fit_scaled_chi2`): a plain bootstrap quantile at a tail
probability of 1e-6 would need millions of draws, while the scaled chi-square is the
asymptotic form of both statistics (``PSI ~ chi2 / n_eff``, ``8 n_eff JSD ~ chi2``) and its
two moments absorb what sparse categories do to it.

>>> run_length(1_000_000, 40)
40000000.0
>>> evaluation_tail(40_000_000, 250)
6.25e-06
>>> round(page_hinkley_threshold(40_000_000), 1)
14.8
>>> round(adwin_delta(40_000_000), 5)
0.00087
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from detectors._sequential_fit import ADWIN_FIT, PAGE_HINKLEY_FIT

__all__ = [
    "CALIBRATION_DRAWS",
    "CALIBRATION_SEED",
    "SEQUENTIAL_MARGIN",
    "ScaledChi2",
    "adwin_delta",
    "evaluation_tail",
    "fit_scaled_chi2",
    "page_hinkley_threshold",
    "run_length",
    "two_sample_draws",
    "z_for_tail",
]

#: Seed of every bootstrap calibration: the same reference gives the same threshold.
CALIBRATION_SEED: Final = 20261206
#: Null draws per bootstrap calibration (~2-15 ms for 10-200 cells).
CALIBRATION_DRAWS: Final = 2000
#: ADWIN and Page-Hinkley aim at this many times their run length. Their fits are
#: extrapolated ~50x beyond the longest simulated run, and unlike window tests (whose union
#: bound over overlapping windows leaves most of their share unused) they spend their whole
#: share: on 26 M stable predictions (``benchmarks.false_alarms``) they fired about as often
#: as their share allows, which left no margin for the model's total.
SEQUENTIAL_MARGIN: Final = 10.0
_NORMAL: Final = NormalDist()


def run_length(expected_run_time: float, n_detectors: int, weight: float = 1.0) -> float:
    """A detector's mean updates between false alarms: its share of the model's budget."""
    return float(expected_run_time) * max(1, n_detectors) / weight


def evaluation_tail(run_length: float, step: int) -> float:
    """False-alarm probability per evaluation of a test evaluated every ``step`` values."""
    return min(0.5, step / run_length)


def z_for_tail(tail: float, tails: int = 1) -> float:
    """The z whose upper (``tails=2``: two-sided) tail probability is ``tail``."""
    return _NORMAL.inv_cdf(1.0 - tail / tails)


def adwin_delta(run_length: float) -> float:
    """ADWIN's ``delta`` whose mean run length on stable uniform values is ``run_length``.

    Fit ``ln ARL = a + b ln(1/delta)`` to simulated run lengths (bounded input; ADWIN's
    bound is distribution-free for bounded values, so it also holds for error streams).
    """
    a, b = ADWIN_FIT
    log_delta = -(math.log(run_length) - a) / b
    return float(min(0.5, max(1e-12, math.exp(log_delta))))


def _theta(delta: float) -> float:
    """Exponent of the Page-Hinkley run length on standardised uniform input with drift
    ``delta``: the root of ``E exp(theta (X - delta)) = 1`` (Siegmund's approximation)."""
    root3 = math.sqrt(3.0)

    def gap(theta: float) -> float:
        return math.log(math.sinh(root3 * theta) / (root3 * theta)) - delta * theta

    return float(optimize.brentq(gap, 1e-6, 200.0))


def page_hinkley_threshold(run_length: float, delta: float = 0.5) -> float:
    """Page-Hinkley's ``threshold`` (lambda) on standardised uniform input whose mean run
    length is ``run_length``: ``ln ARL = c + theta(delta) lambda``, ``c`` from the
    simulation at ``delta`` 0.5, ``theta`` exact for any delta."""
    intercept, slope = PAGE_HINKLEY_FIT
    theta = slope if delta == 0.5 else _theta(delta) * slope / _theta(0.5)
    return float(max(1.0, (math.log(run_length) - intercept) / theta))


@dataclass(frozen=True, slots=True)
class ScaledChi2:
    """``scale * chi2(dof)``: a statistic's null distribution fitted by its moments. Its
    tails come from ``scipy.special``, the functions ``scipy.stats.chi2`` calls, without
    its ~0.1 ms of argument handling per call."""

    scale: float
    dof: float

    def isf(self, tail: float) -> float:
        """The value exceeded with probability ``tail``."""
        return float(self.scale * special.chdtri(self.dof, tail))

    def sf(self, value: float) -> float:
        """Probability of exceeding ``value`` (the statistic's tail probability)."""
        return float(special.chdtrc(self.dof, value / self.scale))


def fit_scaled_chi2(draws: npt.NDArray[np.float64]) -> ScaledChi2:
    """Moment-matched scaled chi-square: mean ``scale * dof``, variance ``2 scale² dof``.

    >>> rng = np.random.default_rng(0)
    >>> fit = fit_scaled_chi2(0.01 * rng.chisquare(9, 20_000))
    >>> round(fit.scale, 3), round(fit.dof, 1)
    (0.01, 9.1)
    """
    mean = float(np.mean(draws))
    variance = float(np.var(draws))
    if mean <= 0 or variance <= 0:
        return ScaledChi2(max(mean, 1e-12), 1.0)
    return ScaledChi2(variance / (2.0 * mean), 2.0 * mean * mean / variance)


def two_sample_draws(
    reference: npt.NDArray[np.float64],
    missing_mass: float,
    n_reference: int,
    n_window: int,
    draws: int = CALIBRATION_DRAWS,
    seed: int = CALIBRATION_SEED,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Cell counts of ``draws`` (reference, window) pairs drawn under "no drift".

    ``reference`` holds the reference's cell shares (its last cell is the "unseen" bucket,
    share 0). A reference of ``n_reference`` values is redrawn from those shares (the real
    one is a sample too); a window of ``n_window`` values gets, in addition, the unseen
    bucket's ``missing_mass`` (Good-Turing: the share of categories seen once in the
    reference), because a window of a stable stream does meet categories the reference
    missed.
    """
    rng = np.random.default_rng([seed, len(reference), n_reference, n_window])
    shares = np.asarray(reference, dtype=np.float64)
    shares = shares / shares.sum()
    window_shares = shares * (1.0 - missing_mass)
    window_shares[-1] += missing_mass
    ref_counts = rng.multinomial(n_reference, shares, size=draws)
    win_counts = rng.multinomial(n_window, window_shares / window_shares.sum(), size=draws)
    return ref_counts, win_counts
