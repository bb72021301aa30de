"""False alarms under control: one alarm policy per model, one gate per signal x detector.

Many features x several detectors multiply false alarms. :class:`AlarmPolicy` holds a
model's rules; the stream engine asks it for budget-adjusted detector parameters and runs
every detector's states through a :class:`SignalGate`, which turns them into transitions
(entered drift, entered warning, cleared) — the only things worth an alert.

* **Budget split** (``split="bonferroni"``): a model with ``n`` signals gets, in total,
  the false-alarm rate of one detector with its default parameters: each detector's
  significance (ADWIN ``delta``, KS/chi-square/KSWIN ``alpha``, HDDM confidences, FHDDM
  ``confidence_level``) is divided by ``n``, and z-score thresholds (DDM, prediction band)
  move to the z of the divided tail probability. Thresholds that are not probabilities
  (PSI, Jensen-Shannon, Page-Hinkley, EDDM, quality fractions) are left as configured.
* **Minimum evidence**: a detector's state is ignored until it has ``min_updates``
  updates; window tests need ``confirm_windows`` consecutive windows beyond the threshold.
* **Hysteresis**: a signal enters drift at the first detection and leaves it only after
  ``clear_after`` quiet updates, so a detector that fires repeatedly on one change (or a
  window test that stays above its threshold) raises one alarm, not a storm.

>>> policy = AlarmPolicy()
>>> policy.detector_params("adwin", n_signals=10)["delta"]
0.0002
>>> gate = SignalGate(policy)
>>> gate.observe(DriftState.DRIFT, updates=700) is None  # too early: min_updates=1000
True
>>> gate.observe(DriftState.DRIFT, updates=1500)
<Transition.ENTERED_DRIFT: 'entered_drift'>
>>> gate.observe(DriftState.DRIFT, updates=1900) is None  # still the same alarm
True
>>> gate.observe(DriftState.NONE, updates=6899) is None, gate.observe(DriftState.NONE, 6900)
(True, <Transition.CLEARED: 'cleared'>)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors._checks import require_bool, require_choice, require_int
from detectors.base import DriftState, InvalidParameterError, Params, SnapshotError
from detectors.registry import DETECTORS

__all__ = [
    "SIGNIFICANCE_PARAMETERS",
    "Z_PARAMETERS",
    "AlarmPolicy",
    "SignalGate",
    "Transition",
]

#: Parameters that are probabilities of a false detection: divided by the number of signals.
SIGNIFICANCE_PARAMETERS: Final[Mapping[str, tuple[str, ...]]] = {
    "adwin": ("delta",),
    "kswin": ("alpha",),
    "hddm_a": ("drift_confidence", "warning_confidence"),
    "hddm_w": ("drift_confidence", "warning_confidence"),
    "fhddm": ("confidence_level",),
    "ks": ("alpha", "warning_alpha"),
    "chi_square": ("alpha", "warning_alpha"),
}

#: Parameters that are z-score thresholds, with the number of tails they test.
Z_PARAMETERS: Final[Mapping[str, tuple[tuple[str, int], ...]]] = {
    "ddm": (("warning_threshold", 1), ("drift_threshold", 1)),
    "prediction_band": (("k", 2), ("warning_k", 2)),
}

_NORMAL: Final = NormalDist()


def _split_z(z: float, n_signals: int, tails: int) -> float:
    """The z whose tail probability is that of ``z`` divided by ``n_signals``."""
    tail = tails * (1.0 - _NORMAL.cdf(z)) / n_signals
    return _NORMAL.inv_cdf(1.0 - tail / tails)


@dataclass(frozen=True, slots=True)
class AlarmPolicy(Params):
    """A model's alarm rules; defaults are explained in ``docs/detectors-windows.md``.

    ``split``: ``"bonferroni"`` (divide the budget across signals) or ``"none"``;
    ``min_updates``: updates a detector needs before it may alarm; ``confirm_windows``:
    consecutive evaluated windows beyond the threshold for window tests; ``clear_after``:
    quiet updates before a signal leaves drift/warning; ``warnings``: report warnings.
    """

    split: str = "bonferroni"
    min_updates: int = 1000
    confirm_windows: int = 1
    clear_after: int = 5000
    warnings: bool = True

    def validate(self) -> None:
        require_choice(self, "split", ("bonferroni", "none"))
        require_int(self, "min_updates", minimum=0)
        require_int(self, "confirm_windows", minimum=1, maximum=1000)
        require_int(self, "clear_after", minimum=1)
        require_bool(self, "warnings")

    def detector_params(
        self, kind: str, n_signals: int, base: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Full, validated parameters for a ``kind`` detector on one of ``n_signals`` signals.

        ``base`` is the configured parameters (defaults for what it omits); the result is
        plain data for :func:`detectors.registry.create`.

        >>> AlarmPolicy().detector_params("ks", 4, {"window_size": 500})["alpha"]
        2.5e-05
        >>> round(AlarmPolicy().detector_params("ddm", 10)["drift_threshold"], 2)
        3.64
        """
        if isinstance(n_signals, bool) or not isinstance(n_signals, int) or n_signals < 1:
            raise InvalidParameterError(
                "AlarmPolicy", "n_signals", f"must be an integer >= 1, got {n_signals!r}"
            )
        if kind not in DETECTORS:
            known = ", ".join(sorted(DETECTORS))
            raise InvalidParameterError("AlarmPolicy", "kind", f"{kind!r} is unknown ({known})")
        params_type = DETECTORS[kind].params_type
        configured = dict(base or {})
        values = {**params_type.from_mapping(configured).to_dict()}
        if "confirmations" in values and "confirmations" not in configured:
            values["confirmations"] = self.confirm_windows
        if self.split == "bonferroni" and n_signals > 1:
            for name in SIGNIFICANCE_PARAMETERS.get(kind, ()):
                values[name] = values[name] / n_signals
            for name, tails in Z_PARAMETERS.get(kind, ()):
                values[name] = _split_z(values[name], n_signals, tails)
        return params_type.from_mapping(values).to_dict()


class Transition(enum.Enum):
    """What a gate reports: the signal entered drift or warning, or went quiet again."""

    ENTERED_DRIFT = "entered_drift"
    ENTERED_WARNING = "entered_warning"
    CLEARED = "cleared"


class SignalGate:
    """Hysteresis and minimum evidence for one signal x detector; its state is plain data.

    Feed it the detector's state after each update (or the worst state of a batch) with the
    detector's update count. A warning while in drift keeps the drift alarm alive; drift
    while in warning escalates at once.
    """

    def __init__(self, policy: AlarmPolicy | None = None) -> None:
        self._policy = policy or AlarmPolicy()
        self._level = DriftState.NONE
        self._last_alarm = 0
        self._since = 0

    @property
    def level(self) -> DriftState:
        """The signal's gated state: what alerts and ``driftradar_drift_active`` show."""
        return self._level

    @property
    def active(self) -> bool:
        return self._level is not DriftState.NONE

    @property
    def since(self) -> int:
        """Detector update count at which the current level was entered."""
        return self._since

    def _effective(self, state: DriftState, updates: int) -> DriftState:
        if updates < self._policy.min_updates:
            return DriftState.NONE
        if state is DriftState.WARNING and not self._policy.warnings:
            return DriftState.NONE
        return state

    def observe(self, state: DriftState | int, updates: int) -> Transition | None:
        """Take one detector state (``updates``: the detector's update count then)."""
        state = self._effective(DriftState(state), updates)
        if state is DriftState.DRIFT:
            self._last_alarm = updates
            if self._level is not DriftState.DRIFT:
                self._level, self._since = DriftState.DRIFT, updates
                return Transition.ENTERED_DRIFT
            return None
        if state is DriftState.WARNING:
            self._last_alarm = updates
            if self._level is DriftState.NONE:
                self._level, self._since = DriftState.WARNING, updates
                return Transition.ENTERED_WARNING
            return None
        if self._level is not DriftState.NONE and updates - self._last_alarm >= (
            self._policy.clear_after
        ):
            self._level, self._since = DriftState.NONE, updates
            return Transition.CLEARED
        return None

    def observe_many(
        self, states: npt.NDArray[np.int8], first_update: int
    ) -> list[tuple[int, Transition]]:
        """Same as :meth:`observe` on each state, ``states[i]`` at update ``first_update + i``
        (e.g. the output of ``update_many`` on accepted values); returns (update, transition).

        >>> gate = SignalGate(AlarmPolicy(min_updates=0, clear_after=3))
        >>> gate.observe_many(np.array([0, 2, 2, 0, 0, 0, 0, 1], dtype=np.int8), 1)
        [(2, <Transition.ENTERED_DRIFT: 'entered_drift'>), (6, <Transition.CLEARED: 'cleared'>), (8, <Transition.ENTERED_WARNING: 'entered_warning'>)]
        """  # noqa: E501
        policy = self._policy
        levels = np.asarray(states, dtype=np.int8).copy()
        head = max(0, min(len(levels), policy.min_updates - first_update))
        levels[:head] = 0
        if not policy.warnings:
            levels[levels == DriftState.WARNING] = 0
        out: list[tuple[int, Transition]] = []
        cursor = 0
        for index in [*np.flatnonzero(levels).tolist(), len(levels)]:
            if self._level is not DriftState.NONE and cursor < index:
                clear_at = max(self._last_alarm + policy.clear_after, first_update + cursor)
                if clear_at - first_update < index:
                    transition = self.observe(DriftState.NONE, clear_at)
                    if transition is not None:
                        out.append((clear_at, transition))
            if index < len(levels):
                transition = self.observe(DriftState(int(levels[index])), first_update + index)
                if transition is not None:
                    out.append((first_update + index, transition))
            cursor = index + 1
        return out

    def snapshot(self) -> dict[str, Any]:
        """Plain data for :meth:`restore`."""
        return {"level": int(self._level), "last_alarm": self._last_alarm, "since": self._since}

    @classmethod
    def restore(cls, policy: AlarmPolicy | None, data: Mapping[str, Any]) -> SignalGate:
        """A gate in the state :meth:`snapshot` recorded."""
        gate = cls(policy)
        try:
            gate._level = DriftState(int(data["level"]))
            gate._last_alarm = int(data["last_alarm"])
            gate._since = int(data["since"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"signal gate: corrupt snapshot ({exc!r})") from exc
        return gate
