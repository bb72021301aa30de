"""The one interface every detector implements: update, update_many, result, snapshot, reset.

Detectors are pure and I/O-free. The stream engine feeds values, reads states, and stores
``snapshot()`` output (plain data) so a detector can be revived with ``restore()`` after a
crash, on another process, without pickle.
"""

from __future__ import annotations

import abc
import enum
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

__all__ = [
    "SNAPSHOT_FORMAT",
    "STATE_OF",
    "DetectionResult",
    "Detector",
    "DetectorError",
    "DriftState",
    "InvalidParameterError",
    "Params",
    "SnapshotError",
    "StateArray",
    "Trace",
]

#: Version of the snapshot layout; bumped when a detector's stored state changes shape.
SNAPSHOT_FORMAT = 1

#: One ``int8`` DriftState per input value, as returned by :meth:`Detector.update_many`.
StateArray = npt.NDArray[np.int8]


class DetectorError(Exception):
    """Root of every error raised by the detector library."""


class InvalidParameterError(DetectorError, ValueError):
    """A detector parameter is out of range or of the wrong type; the message names it."""

    def __init__(self, detector: str, parameter: str, problem: str) -> None:
        super().__init__(f"{detector}: parameter {parameter!r} {problem}")
        self.detector = detector
        self.parameter = parameter
        self.problem = problem


class SnapshotError(DetectorError, ValueError):
    """A snapshot cannot be restored (unknown kind, wrong format, corrupt state)."""


class DriftState(enum.IntEnum):
    """What a detector says after an update: nothing, a warning, or drift."""

    NONE = 0
    WARNING = 1
    DRIFT = 2


#: The :class:`DriftState` of an ``int8`` code (``STATE_OF[states[-1]]``): a tuple look-up,
#: a third of ``DriftState(int(code))``'s time on the per-chunk path.
STATE_OF: tuple[DriftState, ...] = tuple(DriftState)


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """A detector's verdict with the statistics that justify it.

    ``details`` holds detector-specific numbers (e.g. ``mean_before``/``mean_after``,
    bin counts), always plain data so it can go straight into an alert's JSON.
    """

    state: DriftState
    updates: int
    statistic: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    window_size: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return self.state is DriftState.DRIFT

    @property
    def warning(self) -> bool:
        return self.state is DriftState.WARNING

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for alerts and ``status --json`` (``asdict``'s keys and values;
        lists in ``details`` are copied, without ``asdict``'s slow recursive deep copy)."""
        return {
            "state": self.state.name.lower(),
            "updates": self.updates,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "window_size": self.window_size,
            "details": {
                key: list(value) if isinstance(value, list) else value
                for key, value in self.details.items()
            },
        }


@dataclass(frozen=True, slots=True)
class Params:
    """Base of every detector's frozen parameter object.

    Subclasses declare fields with defaults and override :meth:`validate`, raising
    :class:`InvalidParameterError` through :meth:`_fail` so the message names the parameter.
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # pragma: no cover - overridden where there is anything to check
        """Check every field; raise :class:`InvalidParameterError` naming the bad one."""

    def _fail(self, parameter: str, problem: str) -> None:
        raise InvalidParameterError(type(self).__qualname__, parameter, problem)

    def _require(self, parameter: str, ok: bool, problem: str) -> None:
        if not ok:
            self._fail(parameter, problem)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """Build from config data, rejecting unknown keys by name."""
        known = set(_field_names(cls))
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidParameterError(
                cls.__qualname__, unknown[0], f"is unknown (known: {', '.join(sorted(known))})"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """``{field: value}``; the fields are immutable values, so no deep copy is needed."""
        return {name: getattr(self, name) for name in _field_names(type(self))}


_FIELD_NAMES: dict[type[Params], tuple[str, ...]] = {}


def _plain_params(params: Params) -> dict[str, Any]:
    """``params.to_dict()``, one dict for equal parameters: hundreds of models' detectors
    of one configuration keep one instead of one each (~18 KiB per model)."""
    # keyed on the values' types too: equal parameters may differ in them (1 and 1.0)
    types = tuple(type(getattr(params, name)) for name in _field_names(type(params)))
    try:
        return _shared_plain_params(params, types)
    except TypeError:  # a parameter value that cannot be hashed: its own dict
        return params.to_dict()


@functools.lru_cache(maxsize=1024)
def _shared_plain_params(params: Params, types: tuple[type, ...]) -> dict[str, Any]:
    return params.to_dict()


def _field_names(params_type: type[Params]) -> tuple[str, ...]:
    """The dataclass field names of a parameter class, looked up once per class."""
    names = _FIELD_NAMES.get(params_type)
    if names is None:
        names = _FIELD_NAMES[params_type] = tuple(f.name for f in fields(params_type))
    return names


class Trace:
    """The results a detector had at points inside one :meth:`Detector.trace_many` batch.

    Values are indexed in input order, rejected ones included (as the returned states).
    This base records nothing: every index gives the detector's current :meth:`result
    <Detector.result>`. River wrappers record the result at each drift, window tests after
    each window they evaluate; for them any other index gives the last recorded result
    before it, or the current one when there is none.
    """

    __slots__ = ("_detector", "before", "count", "mask")

    def __init__(self, detector: Detector, count: int) -> None:
        self._detector = detector
        #: ``detector.updates`` before the batch, and the number of values in it.
        self.before, self.count = detector.updates, count
        #: Which values of the batch were accepted (``None``: all of them).
        self.mask: npt.NDArray[np.bool_] | None = None

    def result_at(self, index: int) -> DetectionResult:
        """The result just after value ``index`` (0-based) of the batch."""
        mask = self.mask
        if 0 <= index < self.count:
            accepted = index + 1 if mask is None else int(np.count_nonzero(mask[: index + 1]))
            found = self._after(accepted) if accepted else None
            if found is not None:
                return found
        return self._detector.result()

    def _after(self, accepted: int) -> DetectionResult | None:
        """The recorded result just after the first ``accepted`` (>= 1) accepted values."""
        return None


class Detector(abc.ABC):
    """Base class: subclasses implement ``_update_one`` and the state (de)serialisation.

    ``update`` rejects values it cannot use (None, NaN, inf, wrong type) by counting them in
    :attr:`rejected` and returning :attr:`DriftState.NONE`, so a bad value never crashes the
    stream nor reaches the statistics. ``update_many`` must give exactly the states that
    one-by-one ``update`` calls would; subclasses override it only to be faster.
    """

    #: Registry name, e.g. ``"adwin"``; unique across the library.
    kind: ClassVar[str]
    #: The frozen parameter class of this detector.
    params_type: ClassVar[type[Params]]

    def __init__(self, params: Params | None = None) -> None:
        if params is None:
            params = self.params_type()
        elif not isinstance(params, self.params_type):
            raise InvalidParameterError(
                self.kind,
                "params",
                f"must be {self.params_type.__qualname__}, got {type(params).__qualname__}",
            )
        self._params = params
        self._params_data: dict[str, Any] | None = None  # params.to_dict(), made once
        self._updates = 0
        self._rejected = 0
        self._state = DriftState.NONE
        self._init_state()

    # -- what subclasses implement -------------------------------------------------------

    @abc.abstractmethod
    def _init_state(self) -> None:
        """Create the empty detector state from ``self._params``."""

    @abc.abstractmethod
    def _update_one(self, value: Any) -> DriftState:
        """Update with one accepted value (already checked by :meth:`_accept`)."""

    @abc.abstractmethod
    def _result(self) -> DetectionResult:
        """The statistics behind the current state."""

    @abc.abstractmethod
    def _state_to_data(self) -> dict[str, Any]:
        """The detector state as plain data (JSON- and msgpack-able)."""

    @abc.abstractmethod
    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        """Load what :meth:`_state_to_data` produced into a freshly built detector."""

    def _accept(self, value: Any) -> bool:
        """Whether ``value`` can be used; numeric detectors accept finite reals and bools."""
        if isinstance(value, (bool, np.bool_)):
            return True
        return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)

    # -- the public interface ------------------------------------------------------------

    @property
    def params(self) -> Params:
        return self._params

    @property
    def updates(self) -> int:
        """Number of values the detector has used."""
        return self._updates

    @property
    def rejected(self) -> int:
        """Number of values refused (None, NaN, inf, wrong type)."""
        return self._rejected

    @property
    def state(self) -> DriftState:
        """State after the last update."""
        return self._state

    @property
    def drift_detected(self) -> bool:
        return self._state is DriftState.DRIFT

    def update(self, value: Any) -> DriftState:
        """Use one value; returns the state after it."""
        if not self._accept(value):
            self._rejected += 1
            return DriftState.NONE
        self._updates += 1
        self._state = self._update_one(value)
        return self._state

    def update_many(self, values: Iterable[Any] | npt.NDArray[Any]) -> StateArray:
        """Use a batch; returns one state per input value (``NONE`` for rejected ones)."""
        values = list(values) if not isinstance(values, np.ndarray) else values
        out = np.zeros(len(values), dtype=np.int8)
        update = self.update
        for i, value in enumerate(values):
            out[i] = update(value)
        return out

    def result(self) -> DetectionResult:
        """The current state with the statistics that justify it."""
        return self._result()

    def trace_many(self, values: Iterable[Any] | npt.NDArray[Any]) -> tuple[StateArray, Trace]:
        """:meth:`update_many`, and a :class:`Trace` of the results inside the batch, so an
        alarm raised inside a batch reports the statistics that raised it, not those at its
        end. The detector keeps nothing of the batch: the trace is the caller's.

        >>> from detectors import ADWIN
        >>> states, trace = ADWIN().trace_many([0.0] * 1000 + [1.0] * 1000)
        >>> at = int(np.argmax(states == DriftState.DRIFT))
        >>> trace.result_at(at).drift, trace.result_at(len(states) - 1).drift
        (True, False)
        """
        trace = Trace(self, 0)
        states = self.update_many(values)
        trace.count = len(states)
        return states, trace

    def reset(self) -> None:
        """Forget everything seen; parameters stay."""
        self._updates = 0
        self._rejected = 0
        self._state = DriftState.NONE
        self._init_state()

    def snapshot(self) -> dict[str, Any]:
        """Plain data that :func:`detectors.restore` turns back into an equal detector."""
        return {
            "kind": self.kind,
            "format": SNAPSHOT_FORMAT,
            "params": dict(self._params_plain()),
            "updates": self._updates,
            "rejected": self._rejected,
            "state": int(self._state),
            "data": self._state_to_data(),
        }

    def _params_plain(self) -> dict[str, Any]:
        """``params.to_dict()``, computed once: the parameters are frozen (read it, do not
        change it: detectors with equal parameters share it)."""
        if self._params_data is None:
            self._params_data = _plain_params(self._params)
        return self._params_data

    @classmethod
    def with_reference(cls, params: Params | None, reference: Any) -> Self:
        """Build a detector primed with a reference profile; only reference-window tests can."""
        raise InvalidParameterError(cls.kind, "reference", "is not used by this detector")

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Self:
        """Revive a detector of this class from :meth:`snapshot` output."""
        if snapshot.get("kind") != cls.kind:
            raise SnapshotError(f"snapshot kind {snapshot.get('kind')!r} is not {cls.kind!r}")
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(
                f"{cls.kind}: snapshot format {snapshot.get('format')!r} is not {SNAPSHOT_FORMAT}"
            )
        try:
            params = cls.params_type.from_mapping(snapshot["params"])
            detector = cls(params)
            detector._updates = int(snapshot["updates"])
            detector._rejected = int(snapshot["rejected"])
            if detector._updates < 0 or detector._rejected < 0:
                raise ValueError("negative update counters")
            detector._state = DriftState(int(snapshot["state"]))
            detector._state_from_data(snapshot["data"])
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            # InvalidParameterError included: bad params inside a snapshot make it corrupt
            raise SnapshotError(f"{cls.kind}: corrupt snapshot ({exc!r})") from exc
        return detector

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._params!r}, updates={self._updates})"
