"""One monitored signal (a feature, the predictions, the error stream, a quality check):
the detectors that watch it, when it is in drift, and its plain-data snapshot.

Each detector's states go through a :class:`detectors.policy.SignalGate` (minimum evidence,
hysteresis). The signal enters drift when its first gate enters drift and leaves it when no
gate is in drift any more; only the entry produces an alert. Detector parameters are
budget-split across the model's signals by :class:`detectors.policy.AlarmPolicy`.
Detectors whose parameters are in the
units of the data (Page-Hinkley) receive standardised values: ``(x - mean) / std`` of the
signal's first ``warmup`` values, or of the reference profile when one is configured.

>>> policy = AlarmPolicy(min_updates=100, clear_after=500)
>>> signal = Signal.create("feature:x", "data_drift", {"adwin": {}}, warmup=100,
...                        policy=policy, n_signals=1)
>>> x = np.concatenate((np.zeros(1000), np.ones(1000)))
>>> signal.feed(x)
[(1023, 'adwin', 1024)]
>>> signal.status(), signal.active  # cleared after 500 quiet updates
({'adwin': {'updates': 2000, 'drift': False}}, False)
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.base import Detector, DetectorError, DriftState
from detectors.policy import AlarmPolicy, SignalGate, Transition
from detectors.profile import NumericProfile, Profile

__all__ = ["SCALED_KINDS", "Signal", "check_detector", "create_detector"]

#: Detector kinds fed standardised values (their thresholds are in units of the data).
SCALED_KINDS: Final = frozenset({"page_hinkley"})


def check_detector(kind: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(parameter, problem)`` if ``kind``/``params`` is not a valid detector, else None."""
    from detectors import registry

    if kind not in registry.DETECTORS:
        return "", f"unknown detector kind (known: {', '.join(registry.available())})"
    try:
        registry.DETECTORS[kind].params_type.from_mapping(params)
    except DetectorError as exc:
        parameter = getattr(exc, "parameter", "")
        return parameter, getattr(exc, "problem", str(exc))
    except TypeError as exc:
        return "", str(exc)
    return None


def uses_reference(kind: str) -> bool:
    """Whether ``kind`` compares with a reference profile (built from its warm-up)."""
    from detectors import registry

    return bool(getattr(registry.DETECTORS[kind], "uses_reference", False))


def create_detector(
    kind: str,
    params: Mapping[str, Any],
    *,
    warmup: int,
    reference: Profile | None,
    policy: AlarmPolicy,
    n_signals: int,
) -> Detector:
    """A fresh detector with budget-split parameters; reference-window tests warm up on
    ``warmup`` values unless they get ``reference`` (from the configured reference file)."""
    from detectors import registry

    params = dict(params)
    if uses_reference(kind):
        params.setdefault("warmup", warmup)
    params = policy.detector_params(kind, n_signals, params)
    if uses_reference(kind):
        params.setdefault("warmup", warmup)
        if reference is not None:
            return registry.create(kind, params, reference=reference)
    return registry.create(kind, params)


class _Slot:
    """A detector on a signal, with its drift gate."""

    __slots__ = ("detector", "gate", "saved", "scaled")

    def __init__(self, detector: Detector, gate: SignalGate, scaled: bool) -> None:
        self.detector = detector
        self.gate = gate
        self.scaled = scaled
        # (updates, rejected) at the last snapshot, and that snapshot: a detector changes
        # only by taking values, so an idle one is not serialised again at every checkpoint
        self.saved: tuple[tuple[int, int], dict[str, Any]] | None = None

    def detector_snapshot(self) -> dict[str, Any]:
        detector = self.detector
        mark = (detector.updates, detector.rejected)
        if self.saved is None or self.saved[0] != mark:
            self.saved = (mark, detector.snapshot())
        return self.saved[1]


class Signal:
    """A named stream of values watched by several detectors."""

    __slots__ = (
        "active",
        "alert_type",
        "alerts",
        "inputs",
        "name",
        "policy",
        "scale",
        "slots",
        "warm",
        "warmup",
    )

    def __init__(self, name: str, alert_type: str, warmup: int, policy: AlarmPolicy) -> None:
        self.name = name
        self.policy = policy
        self.alert_type = alert_type
        self.warmup = warmup
        self.slots: dict[str, _Slot] = {}
        self.active = False
        self.inputs = 0  # values offered to the signal
        self.alerts = 0
        self.scale: tuple[float, float] | None = None  # (mean, std) for scaled detectors
        self.warm = array("d")  # warm-up values: 8 bytes each, not a float object each

    @classmethod
    def create(
        cls,
        name: str,
        alert_type: str,
        detectors: Mapping[str, Mapping[str, Any]],
        *,
        warmup: int,
        policy: AlarmPolicy,
        n_signals: int,
        reference: Profile | None = None,
    ) -> Signal:
        """A signal with fresh detectors ``{kind: params}``."""
        signal = cls(name, alert_type, warmup, policy)
        for kind, params in detectors.items():
            detector = create_detector(
                kind,
                params,
                warmup=warmup,
                reference=reference,
                policy=policy,
                n_signals=n_signals,
            )
            signal.slots[kind] = _Slot(detector, SignalGate(policy), kind in SCALED_KINDS)
        if isinstance(reference, NumericProfile):
            signal.scale = (reference.mean, reference.std or 1.0)
        return signal

    def feed(self, values: npt.NDArray[Any] | list[Any]) -> list[tuple[int, str, int]]:
        """Update every detector; returns ``(index, detector, detector update count)`` for
        each point of this batch where the signal entered drift."""
        n = len(values)
        if n == 0:
            return []
        tail = self._scaled_tail(values) if self._needs_scale() else None
        events: list[tuple[int, int, int, str, Transition, int]] = []
        in_drift: set[str] = set()
        chunk: Any
        for order, (label, slot) in enumerate(self.slots.items()):
            if slot.gate.level is DriftState.DRIFT:
                in_drift.add(label)
            if slot.scaled:
                if tail is None or not tail[1].size:
                    continue
                offset, chunk = tail
            else:
                offset, chunk = 0, values
            detector = slot.detector
            before = detector.updates
            states = detector.update_many(chunk)
            if not states.any() and slot.gate.level is DriftState.NONE:
                continue  # nothing to gate: quiet detector, quiet gate
            first = before + 1
            for update, transition in slot.gate.observe_many(states, first):
                index = offset + (update - first)
                rank = 0 if transition is Transition.CLEARED else 1
                events.append((index, rank, order, label, transition, update))
        self.inputs += n
        out: list[tuple[int, str, int]] = []
        if events:
            events.sort(key=lambda e: (e[0], e[1], e[2]))
            for index, _, _, label, transition, update in events:
                if transition is Transition.ENTERED_DRIFT:
                    if not in_drift:
                        out.append((min(index, n - 1), label, update))
                    in_drift.add(label)
                elif transition is Transition.CLEARED:
                    in_drift.discard(label)
        self.active = bool(in_drift)
        self.alerts += len(out)
        return out

    def _needs_scale(self) -> bool:
        return any(slot.scaled for slot in self.slots.values())

    def _scaled_tail(
        self, values: npt.NDArray[Any] | list[Any]
    ) -> tuple[int, npt.NDArray[np.float64]]:
        """Index from which values are standardised, and those values; warms up first."""
        batch = np.asarray(values, dtype=np.float64)
        start = 0
        if self.scale is None:
            start = min(batch.size, self.warmup - len(self.warm))
            self.warm.extend(batch[:start].tolist())
            if len(self.warm) >= self.warmup:
                warm = np.asarray(self.warm)
                std = float(warm.std())
                self.scale = (float(warm.mean()), std if std > 0 else 1.0)
                self.warm = array("d")
            else:
                return start, batch[:0]
        mean, std = self.scale
        return start, (batch[start:] - mean) / std

    # -- reading -------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        """``{detector: {"updates": n, "drift": bool}}``."""
        return {
            label: {
                "updates": slot.detector.updates,
                "drift": slot.gate.level is DriftState.DRIFT,
            }
            for label, slot in self.slots.items()
        }

    def results(self) -> dict[str, dict[str, Any]]:
        """Each detector's statistics (plain data); ``state`` is the gated level (what
        alerts and status show), ``detector_state`` the detector's own last state."""
        out = {}
        for label, slot in self.slots.items():
            result = slot.detector.result().to_dict()
            result["detector_state"] = result["state"]
            result["state"] = slot.gate.level.name.lower()
            out[label] = result
        return out

    def detector(self, label: str) -> Detector:
        return self.slots[label].detector

    # -- checkpointing -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.alert_type,
            "warmup": self.warmup,
            "active": self.active,
            "inputs": self.inputs,
            "alerts": self.alerts,
            "scale": None if self.scale is None else list(self.scale),
            "warm": list(self.warm),
            "slots": [
                [label, slot.detector_snapshot(), slot.gate.snapshot(), slot.scaled]
                for label, slot in self.slots.items()
            ],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any], policy: AlarmPolicy) -> Signal:
        from detectors import registry

        signal = cls(str(data["name"]), str(data["type"]), int(data["warmup"]), policy)
        signal.active = bool(data["active"])
        signal.inputs = int(data["inputs"])
        signal.alerts = int(data["alerts"])
        scale = data["scale"]
        signal.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        signal.warm = array("d", [float(v) for v in data["warm"]])
        for label, snapshot, gate, scaled in data["slots"]:
            signal.slots[str(label)] = _Slot(
                registry.restore(snapshot), SignalGate.restore(policy, gate), bool(scaled)
            )
        return signal
