"""One monitored signal (a feature, the predictions, the error stream, a quality check):
the detectors that watch it, when it is in drift, and its plain-data snapshot.

Each detector's states go through a :class:`detectors.policy.SignalGate` (minimum evidence,
hysteresis). The signal enters drift when its first gate enters drift and leaves it when no
gate is in drift any more; only the entry produces an alert. Detector parameters come from
the model's false-alarm budget (:class:`detectors.policy.AlarmPolicy`), shared equally by
the model's ``n_detectors`` detectors.

On a signal made with ``transform=True`` (numeric features, numeric predictions, a
regression's absolute error), the sequential detectors (ADWIN, Page-Hinkley, KSWIN) receive
the reference's quantile transform of the values (:mod:`detectors.transform`: uniform under
no drift, whatever the feature's distribution), built from the reference profile when one
is configured, else from the signal's first ``warmup`` values; Page-Hinkley gets them
standardised (``(u - 0.5) * sqrt(12)``). On other signals Page-Hinkley, whose threshold is
in units of the data, gets ``(x - mean) / std`` of the warm-up. While those warm-up values
are the ones its PSI and KS tests warm up on (none missing yet), the signal keeps none of
its own: it reads them from the tests' one warm-up buffer.

>>> policy = AlarmPolicy(min_updates=100, clear_after=500)
>>> signal = Signal.create("feature:x", "data_drift", {"adwin": {}}, warmup=100,
...                        policy=policy, n_detectors=1, transform=True)
>>> rng = np.random.default_rng(1)
>>> x = np.concatenate((rng.lognormal(0, 2, 2000), rng.lognormal(1, 2, 2000)))
>>> [(entry.batch_index, entry.label) for entry in signal.feed(x)]
[(2175, 'adwin')]
>>> signal.status(), signal.active  # cleared after 500 quiet updates
({'adwin': {'updates': 4000, 'drift': False}}, False)
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections.abc import Hashable, Mapping
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from detectors import WindowedDetector, registry
from detectors.base import (
    DetectionResult,
    Detector,
    DetectorError,
    DriftState,
    Params,
    Trace,
)
from detectors.policy import AlarmPolicy, SignalGate, Transition
from detectors.profile import NumericProfile, Profile
from detectors.transform import QuantileTransform
from detectors.window import NumericWindowTest

__all__ = [
    "SCALED_KINDS",
    "TRANSFORMED_KINDS",
    "Signal",
    "SignalEntry",
    "check_detector",
    "create_detector",
]

#: Detector kinds fed standardised values (their thresholds are in units of the data).
SCALED_KINDS: Final = frozenset({"page_hinkley"})
#: Sequential detector kinds fed the quantile transform on signals that transform.
TRANSFORMED_KINDS: Final = frozenset({"adwin", "page_hinkley", "kswin"})
_ROOT12: Final = math.sqrt(12.0)


def check_detector(kind: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(parameter, problem)`` if ``kind``/``params`` is not a valid detector, else None."""
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
    return bool(getattr(registry.DETECTORS[kind], "uses_reference", False))


def create_detector(
    kind: str,
    params: Mapping[str, Any],
    *,
    warmup: int,
    reference: Profile | None,
    policy: AlarmPolicy,
    n_detectors: int,
) -> Detector:
    """A fresh detector with parameters from its share of the budget; reference-window
    tests warm up on ``warmup`` values unless they get ``reference`` (from the configured
    reference file)."""
    key = (kind, _frozen(params), warmup, _frozen(policy.to_dict()), n_detectors)
    try:
        hash(key)
    except TypeError:  # a list among the values: resolved and checked each time
        resolved = _resolved_params(kind, params, warmup, policy, n_detectors)
    else:
        resolved = _shared_params(key, kind, params, warmup, policy, n_detectors)
    if reference is not None and uses_reference(kind):
        return registry.create(kind, resolved, reference=reference)
    return registry.create(kind, resolved)


def _resolved_params(
    kind: str, params: Mapping[str, Any], warmup: int, policy: AlarmPolicy, n_detectors: int
) -> Params:
    """The validated parameter object of a ``kind`` detector (see :func:`create_detector`)."""
    values = dict(params)
    if uses_reference(kind):
        values.setdefault("warmup", warmup)
    values = policy.detector_params(kind, n_detectors, values)
    if uses_reference(kind):
        values.setdefault("warmup", warmup)
    return registry.DETECTORS[kind].params_type.from_mapping(values)


#: Resolved parameters by what they depend on: the detectors of every model with the same
#: configuration share one immutable object, resolved and validated once per process (three
#: validations and a budget derivation per detector otherwise: 12-23 µs instead of 6-11).
_SHARED_PARAMS: Final[dict[Hashable, Params]] = {}
_SHARED_PARAMS_LIMIT: Final = 1024


def _shared_params(
    key: Hashable,
    kind: str,
    params: Mapping[str, Any],
    warmup: int,
    policy: AlarmPolicy,
    n_detectors: int,
) -> Params:
    shared = _SHARED_PARAMS.get(key)
    if shared is None:
        shared = _resolved_params(kind, params, warmup, policy, n_detectors)
        if len(_SHARED_PARAMS) >= _SHARED_PARAMS_LIMIT:
            _SHARED_PARAMS.clear()
        _SHARED_PARAMS[key] = shared
    return shared


def _frozen(values: Mapping[str, Any]) -> tuple[Any, ...]:
    """Config data as a key: each value with its type (``1``, ``1.0`` and ``True`` are equal
    keys, not equal parameters); nested mappings too (unhashable if a value is a list)."""
    return tuple(
        sorted(
            (key, type(value), _frozen(value) if isinstance(value, Mapping) else value)
            for key, value in values.items()
        )
    )


#: The distinct sets of feeds signals have (at most the subsets of the four feeds).
_FEEDS: Final[dict[frozenset[str], frozenset[str]]] = {}


class _Slot:
    """A detector on a signal, with its drift gate; ``feed`` says what values it gets:
    ``raw``, ``quantile`` (the transform), ``quantile_std`` (standardised transform) or
    ``std`` (standardised by the warm-up)."""

    __slots__ = ("detector", "feed", "gate", "share")

    def __init__(self, detector: Detector, gate: SignalGate, feed: str, share: float) -> None:
        self.detector = detector
        self.gate = gate
        self.feed = feed
        self.share = share  # the fraction of the model's false-alarm budget it may use


class SignalEntry(NamedTuple):
    """The signal entered drift at batch value ``batch_index`` through detector ``label``, at
    that detector's ``update``-th value; ``result`` is its statistics at that moment."""

    batch_index: int
    label: str
    update: int
    result: DetectionResult


class Signal:
    """A named stream of values watched by several detectors."""

    __slots__ = (
        "active",
        "alert_type",
        "alerts",
        "feeds",
        "inputs",
        "name",
        "pit",
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
        self.feeds: frozenset[str] = frozenset()  # what the slots are fed (set by _seal)
        self.active = False
        self.inputs = 0  # values offered to the signal
        self.alerts = 0
        self.scale: tuple[float, float] | None = None  # (mean, std) for "std" detectors
        self.pit: QuantileTransform | None = None  # for "quantile" detectors
        #: warm-up values, 8 bytes each (not a float object each); ``None`` while they are
        #: the warm-up values of a raw-fed numeric window test (:meth:`_borrow_warm_up`)
        self.warm: array[float] | None = array("d")

    @classmethod
    def create(
        cls,
        name: str,
        alert_type: str,
        detectors: Mapping[str, Mapping[str, Any]],
        *,
        warmup: int,
        policy: AlarmPolicy,
        n_detectors: int,
        reference: Profile | None = None,
        transform: bool = False,
    ) -> Signal:
        """A signal with fresh detectors ``{kind: params}``, each one of the model's
        ``n_detectors`` detectors sharing its false-alarm budget."""
        signal = cls(name, alert_type, warmup, policy)
        for kind, params in detectors.items():
            detector = create_detector(
                kind,
                params,
                warmup=warmup,
                reference=reference,
                policy=policy,
                n_detectors=n_detectors,
            )
            if transform and kind in TRANSFORMED_KINDS:
                feed = "quantile_std" if kind in SCALED_KINDS else "quantile"
            else:
                feed = "std" if kind in SCALED_KINDS else "raw"
            share = policy.budget_share(kind, n_detectors) if policy.budgeted else 0.0
            signal.slots[kind] = _Slot(detector, SignalGate(policy), feed, share)
        signal._seal()
        if isinstance(reference, NumericProfile):
            signal.scale = (reference.mean, reference.std or 1.0)
            if signal._transforms():
                signal.pit = QuantileTransform.from_profile(reference, signal._seed())
        return signal

    def _seal(self) -> None:
        """Once the slots are all there: what they are fed, and the windows they share."""
        feeds = frozenset(slot.feed for slot in self.slots.values())
        self.feeds = _FEEDS.setdefault(feeds, feeds)  # a handful of sets for every signal
        self._share_windows()
        self._borrow_warm_up()

    def _share_windows(self) -> None:
        """Window tests fed the same values (PSI and KS on one feed) keep one ring buffer
        between them (:meth:`~detectors._windowing.WindowedDetector.share_window`); the
        first in slot order writes it, and :meth:`feed` feeds the slots in that order."""
        leaders: dict[tuple[str, str], WindowedDetector] = {}
        for slot in self.slots.values():
            detector = slot.detector
            if isinstance(detector, WindowedDetector) and detector.ring_key is not None:
                leader = leaders.setdefault((slot.feed, detector.ring_key), detector)
                if leader is not detector:
                    leader.share_window(detector)

    def _warm_source(self) -> NumericWindowTest | None:
        """The raw-fed numeric window test whose warm-up is the signal's own while no value
        is missing (it takes the finite values, up to the same count), if any."""
        for slot in self.slots.values():
            detector = slot.detector
            if (
                slot.feed == "raw"
                and isinstance(detector, NumericWindowTest)
                and detector.params.warmup == self.warmup  # type: ignore[attr-defined]
                and not detector.ready
            ):
                return detector
        return None

    def _borrow_warm_up(self) -> None:
        """Keep no warm-up values of its own while a window test holds the same ones (a
        signal that warms up for a transform, with PSI/KS on its raw values: one buffer
        of 8 KiB at the default warm-up instead of two)."""
        if self.scale is not None or self.warm is None or not self._needs_warmup():
            return
        source = self._warm_source()
        if (
            source is not None
            and source.warm_count == len(self.warm) == self.inputs
            and np.array_equal(source.warm_values(), np.asarray(self.warm))
        ):
            self.warm = None

    def _borrowed_warm_up(self) -> npt.NDArray[np.float64]:
        """The warm-up values so far, read from the window test that holds them."""
        source = self._warm_source()
        if source is None or source.warm_count != self.inputs:
            raise RuntimeError(
                f"{self.name}: its window tests no longer hold its {self.inputs} warm-up "
                "values (a detector was fed alone)"
            )
        values: npt.NDArray[np.float64] = source.warm_values()
        return values

    def _seed(self) -> int:
        """The tie-breaking seed of the signal's quantile transform (from its name)."""
        return zlib.crc32(self.name.encode("utf-8"))

    def _transforms(self) -> bool:
        return not self.feeds.isdisjoint(("quantile", "quantile_std"))

    def slot_info(self, label: str) -> dict[str, Any]:
        """What alert details say about a detector's input and its share of the budget."""
        slot = self.slots[label]
        info: dict[str, Any] = {"budget_share": slot.share}
        if slot.feed != "raw":
            info["input"] = {
                "quantile": "reference quantile (uniform under no drift)",
                "quantile_std": "reference quantile, standardised",
                "std": "standardised by the warm-up",
            }[slot.feed]
        return info

    def feed(self, values: npt.NDArray[Any] | list[Any]) -> list[SignalEntry]:
        """Update every detector; returns a :class:`SignalEntry` for each point of this
        batch where the signal entered drift, with the detector's statistics at that point
        (not at the end of the batch)."""
        n = len(values)
        if n == 0:
            return []
        tails = self._tails(values) if self._needs_warmup() else {}
        events: list[tuple[int, int, int, str, Transition, int]] = []
        traces: dict[str, tuple[int, Trace]] = {}  # label: (its first update, its trace)
        in_drift: set[str] = set()
        chunk: Any
        for order, (label, slot) in enumerate(self.slots.items()):
            if slot.gate.level is DriftState.DRIFT:
                in_drift.add(label)
            if slot.feed != "raw":
                tail = tails.get(slot.feed)
                if tail is None or not tail[1].size:
                    continue
                offset, chunk = tail
            else:
                offset, chunk = 0, values
            detector = slot.detector
            first = detector.updates + 1
            states, trace = detector.trace_many(chunk)
            if slot.gate.level is DriftState.NONE and not np.count_nonzero(states):
                continue  # nothing to gate: quiet detector, quiet gate
            traces[label] = (first, trace)
            for update, transition in slot.gate.observe_many(states, first):
                index = max(0, offset + (update - first))  # < 0: in the warm-up replay
                rank = 0 if transition is Transition.CLEARED else 1
                events.append((index, rank, order, label, transition, update))
        self.inputs += n
        out: list[SignalEntry] = []
        if events:
            events.sort(key=lambda e: (e[0], e[1], e[2]))
            for index, _, _, label, transition, update in events:
                if transition is Transition.ENTERED_DRIFT:
                    if not in_drift:
                        first, trace = traces[label]
                        result = trace.result_at(update - first)
                        out.append(SignalEntry(min(index, n - 1), label, update, result))
                    in_drift.add(label)
                elif transition is Transition.CLEARED:
                    in_drift.discard(label)
        self.active = bool(in_drift)
        self.alerts += len(out)
        return out

    def _needs_warmup(self) -> bool:
        return bool(self.feeds - {"raw"})

    def _tails(
        self, values: npt.NDArray[Any] | list[Any]
    ) -> dict[str, tuple[int, npt.NDArray[np.float64]]]:
        """For each non-raw feed: the index (in this batch) of its first value, and the
        values. Warms up first: ``std`` detectors start after the warm-up; ``quantile``
        detectors get the warm-up values too, transformed once the transform exists (their
        index is then negative: they came in earlier batches), so they see the whole stream."""
        batch = np.asarray(values, dtype=np.float64)
        start = 0
        replay = batch[:0]
        if self.scale is None:
            held = self.inputs if self.warm is None else len(self.warm)
            start = min(batch.size, self.warmup - held)
            head = batch[:start]
            if self.warm is None and not np.isfinite(head).all():
                self.warm = array("d", self._borrowed_warm_up().tobytes())  # tests skip NaN
            if self.warm is not None:
                self.warm.extend(head.tolist())
            if held + start >= self.warmup:
                if self.warm is None:  # the tests take this chunk after the signal
                    replay = np.concatenate((self._borrowed_warm_up(), head))
                else:
                    replay = np.asarray(self.warm)
                warm = replay[np.isfinite(replay)]
                std = float(warm.std()) if warm.size else 1.0
                self.scale = (float(warm.mean()) if warm.size else 0.0, std if std > 0 else 1.0)
                if self._transforms() and self.pit is None:
                    self.pit = QuantileTransform.from_values(
                        warm if warm.size else np.zeros(1), self._seed()
                    )
                self.warm = array("d")
            else:
                return {}
        rest = batch[start:]
        out: dict[str, tuple[int, npt.NDArray[np.float64]]] = {}
        feeds = self.feeds
        if "std" in feeds:
            mean, std = self.scale
            out["std"] = (start, (rest - mean) / std)
        if self.pit is not None and not feeds.isdisjoint(("quantile", "quantile_std")):
            fed = np.concatenate((replay, rest)) if replay.size else rest
            finite = np.isfinite(fed)
            if finite.all():
                u = self.pit.transform(fed)
            else:  # missing values stay NaN (the detectors skip them)
                u = np.full(fed.shape, np.nan)
                u[finite] = self.pit.transform(fed[finite])
            first = start - replay.size
            out["quantile"] = (first, u)
            out["quantile_std"] = (first, (u - 0.5) * _ROOT12)
        return out

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
            "pit": None if self.pit is None else self.pit.to_data(),
            "warm": (self._borrowed_warm_up() if self.warm is None else self.warm).tolist(),
            "slots": [
                [label, slot.detector.snapshot(), slot.gate.snapshot(), slot.feed, slot.share]
                for label, slot in self.slots.items()
            ],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any], policy: AlarmPolicy) -> Signal:
        signal = cls(str(data["name"]), str(data["type"]), int(data["warmup"]), policy)
        signal.active = bool(data["active"])
        signal.inputs = int(data["inputs"])
        signal.alerts = int(data["alerts"])
        scale = data["scale"]
        signal.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        signal.warm = array("d", [float(v) for v in data["warm"]])
        pit = data.get("pit")
        signal.pit = None if pit is None else QuantileTransform.from_data(pit)
        for label, snapshot, gate, *rest in data["slots"]:
            if len(rest) == 1:  # before the budget: a "scaled" flag
                feed, share = ("std" if rest[0] else "raw"), 0.0
            else:
                feed, share = str(rest[0]), float(rest[1])
            signal.slots[str(label)] = _Slot(
                registry.restore(snapshot), SignalGate.restore(policy, gate), feed, share
            )
        signal._seal()
        return signal
