"""False alarms under control: one budget per model, one gate per signal x detector.

Many features x several detectors multiply false alarms. :class:`AlarmPolicy` holds a
model's rules; the stream engine asks it for each detector's parameters and runs every
detector's states through a :class:`SignalGate`, which turns them into transitions
(entered drift, entered warning, cleared) — the only things worth an alert.

* **One budget** (``split="budget"``): ``expected_run_time`` is the mean number of the
  model's events between two false alarms, across all its detectors (default 1 000 000).
  Each of the model's ``n`` detectors gets an equal share, a run length of
  ``expected_run_time * n / weight`` of its own updates, and every statistical threshold
  derives from it (:mod:`detectors.budget`): ADWIN's ``delta`` and Page-Hinkley's
  ``threshold`` from simulated run lengths (aiming at ten times the share), the window
  tests' thresholds from their null distribution for their reference (calibrated when
  the reference exists), per-update significances (KSWIN, HDDM, FHDDM, DDM) as
  ``1 / run length``, per-window ones (band,
  quality) as ``step / run length``. A parameter given in the configuration wins over the
  budget; EDDM has no probability to derive and keeps its own. ``split="none"`` uses the
  configured (or library default) parameters as they are.
* **Minimum evidence**: a detector's state is ignored until it has ``min_updates``
  updates; window tests need ``confirm_windows`` consecutive windows beyond the threshold.
* **Hysteresis**: a signal enters drift at the first detection and leaves it only after
  ``clear_after`` quiet updates, so a detector that fires repeatedly on one change (or a
  window test that stays above its threshold) raises one alarm, not a storm.

>>> policy = AlarmPolicy()
>>> policy.run_length("adwin", n_detectors=40)
40000000.0
>>> round(policy.detector_params("adwin", n_detectors=40)["delta"], 5)
0.00016
>>> policy.detector_params("psi", n_detectors=40)["run_length"]
40000000.0
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
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors import budget
from detectors._checks import require_bool, require_choice, require_int, require_real
from detectors.base import DriftState, InvalidParameterError, Params, SnapshotError
from detectors.registry import DETECTORS

__all__ = [
    "BUDGETED",
    "AlarmPolicy",
    "SignalGate",
    "Transition",
]

#: A per-evaluation warning sits at ten times the drift tail probability.
_WARNING_FACTOR: Final = 10.0


def _step(values: Mapping[str, Any]) -> int:
    """Values between two evaluations of a window detector."""
    return int(
        values["stride"] if values.get("mode", "sliding") == "sliding" else values["window_size"]
    )


def _per_update(
    *names: str, warning: str | None = None
) -> Callable[[Mapping[str, Any], float], dict[str, Any]]:
    def derive(values: Mapping[str, Any], length: float) -> dict[str, Any]:
        out = dict.fromkeys(names, 1.0 / length)
        if warning is not None:
            out[warning] = min(0.5, _WARNING_FACTOR / length)
        return out

    return derive


def _window_alpha(values: Mapping[str, Any], length: float) -> dict[str, Any]:
    return {"alpha": budget.evaluation_tail(length, _step(values))}


def _band(values: Mapping[str, Any], length: float) -> dict[str, Any]:
    tail = budget.evaluation_tail(length, _step(values))
    return {
        "k": budget.z_for_tail(tail, 2),
        "warning_k": budget.z_for_tail(min(0.5, tail * _WARNING_FACTOR), 2),
    }


def _ddm(values: Mapping[str, Any], length: float) -> dict[str, Any]:
    return {
        "drift_threshold": budget.z_for_tail(1.0 / length),
        "warning_threshold": budget.z_for_tail(min(0.5, _WARNING_FACTOR / length)),
    }


#: How each budgeted kind turns its run length into parameters.
BUDGETED: Final[Mapping[str, Callable[[Mapping[str, Any], float], dict[str, Any]]]] = {
    "adwin": lambda values, length: {
        "delta": budget.adwin_delta(length * budget.SEQUENTIAL_MARGIN)
    },
    "page_hinkley": lambda values, length: {
        "threshold": budget.page_hinkley_threshold(
            length * budget.SEQUENTIAL_MARGIN, values["delta"]
        )
    },
    "kswin": _per_update("alpha"),
    "ddm": _ddm,
    "hddm_a": _per_update("drift_confidence", warning="warning_confidence"),
    "hddm_w": _per_update("drift_confidence", warning="warning_confidence"),
    "fhddm": _per_update("confidence_level"),
    "psi": lambda values, length: {"run_length": length},
    "ks": lambda values, length: {"run_length": length},
    "jensen_shannon": lambda values, length: {"run_length": length},
    "chi_square": lambda values, length: {"run_length": length},
    "prediction_band": _band,
    "type": _window_alpha,
    "missing_rate": _window_alpha,
    "value_range": _window_alpha,
    "allowed_categories": _window_alpha,
}


@dataclass(frozen=True, slots=True)
class AlarmPolicy(Params):
    """A model's alarm rules; defaults are explained in ``docs/detectors-windows.md``.

    ``expected_run_time``: mean events of the model between two false alarms, across all
    its detectors; ``split``: ``"budget"`` (derive every threshold from it) or ``"none"``
    (``"bonferroni"`` is read as ``"budget"``); ``weights``: ``{kind: w}``, a detector kind
    with weight ``w`` gets ``w`` times the equal share (``driftradar backtest --tune``
    lowers the weight of kinds that alarm on a stable span); ``min_updates``: updates a
    detector needs before it may alarm; ``confirm_windows``: consecutive evaluated windows
    beyond the threshold for window tests; ``clear_after``: quiet updates before a signal
    leaves drift/warning; ``warnings``: report warnings.
    """

    expected_run_time: float = 1_000_000.0
    split: str = "budget"
    weights: Mapping[str, float] = field(default_factory=dict)
    min_updates: int = 1000
    confirm_windows: int = 1
    clear_after: int = 5000
    warnings: bool = True

    def validate(self) -> None:
        require_real(self, "expected_run_time", low=100.0)
        require_choice(self, "split", ("budget", "none", "bonferroni"))
        weights: Any = self.weights
        if not isinstance(weights, Mapping):
            self._fail("weights", f"must be a mapping of detector kind to weight, got {weights!r}")
        for kind, weight in self.weights.items():
            if kind not in DETECTORS and kind != "baseline":
                self._fail(
                    f"weights.{kind}", f"is not a detector kind ({', '.join(sorted(DETECTORS))})"
                )
            ok = isinstance(weight, int | float) and not isinstance(weight, bool)
            if not ok or not 0 < weight <= 1000 or not math.isfinite(weight):
                self._fail(f"weights.{kind}", f"must be a number in (0, 1000], got {weight!r}")
        require_int(self, "min_updates", minimum=0)
        require_int(self, "confirm_windows", minimum=1, maximum=1000)
        require_int(self, "clear_after", minimum=1)
        require_bool(self, "warnings")

    def to_dict(self) -> dict[str, Any]:
        data = Params.to_dict(self)
        data["weights"] = dict(self.weights)
        return data

    @property
    def budgeted(self) -> bool:
        return self.split != "none"

    def run_length(self, kind: str, n_detectors: int) -> float:
        """Mean updates between false alarms of one ``kind`` detector of a model with
        ``n_detectors`` detectors: its share of ``expected_run_time``."""
        return budget.run_length(self.expected_run_time, n_detectors, self.weights.get(kind, 1.0))

    def budget_share(self, kind: str, n_detectors: int) -> float:
        """The fraction of the model's false-alarm budget one ``kind`` detector may use."""
        return self.weights.get(kind, 1.0) / max(1, n_detectors)

    def detector_params(
        self, kind: str, n_detectors: int, base: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Full, validated parameters for a ``kind`` detector, one of ``n_detectors`` of its
        model; ``base`` is the configured parameters (they win over the budget), the result
        plain data for :func:`detectors.registry.create`.

        >>> params = AlarmPolicy().detector_params("ks", 40, {"window_size": 500})
        >>> params["run_length"], params["window_size"]
        (40000000.0, 500)
        >>> round(AlarmPolicy().detector_params("ddm", 40)["drift_threshold"], 2)
        5.45
        >>> AlarmPolicy(split="none").detector_params("adwin", 40)["delta"]
        0.002
        """
        if isinstance(n_detectors, bool) or not isinstance(n_detectors, int) or n_detectors < 1:
            raise InvalidParameterError(
                "AlarmPolicy", "n_detectors", f"must be an integer >= 1, got {n_detectors!r}"
            )
        if kind not in DETECTORS:
            known = ", ".join(sorted(DETECTORS))
            raise InvalidParameterError("AlarmPolicy", "kind", f"{kind!r} is unknown ({known})")
        params_type = DETECTORS[kind].params_type
        configured = dict(base or {})
        values = {**params_type.from_mapping(configured).to_dict()}
        if "confirmations" in values and "confirmations" not in configured:
            values["confirmations"] = self.confirm_windows
        derive = BUDGETED.get(kind)
        if self.budgeted and derive is not None:
            derived = derive(values, self.run_length(kind, n_detectors))
            values.update({k: v for k, v in derived.items() if k not in configured})
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

    __slots__ = ("_last_alarm", "_level", "_policy", "_since")  # one per detector per model

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
