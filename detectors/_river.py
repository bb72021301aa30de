"""Shared machinery for detectors that wrap a river drift detector.

A wrapper owns one river detector (river is pinned, so its internal attributes are a known
layout), feeds it accepted values, reads its drift/warning flags, and turns its internal
state into plain data and back. Reaching into river's private attributes is the point of
this module and of its users, hence the file-level SLF001 exemption.
"""

# ruff: noqa: SLF001

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from river import stats

from detectors.base import STATE_OF, DetectionResult, Detector, DriftState, StateArray, Trace

__all__ = [
    "RiverDetector",
    "bool_from_data",
    "float_from_data",
    "float_to_data",
    "int_from_data",
    "mean_from_data",
    "mean_to_data",
]

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def float_to_data(value: float) -> float | str:
    """A float as strict-JSON data: non-finite values become ``"inf"``/``"-inf"``/``"nan"``."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def float_from_data(value: Any) -> float:
    """Inverse of :func:`float_to_data`; anything else raises ``ValueError``."""
    if isinstance(value, str):
        if value not in _NON_FINITE:
            raise ValueError(f"not a number: {value!r}")
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def int_from_data(value: Any, *, minimum: int = 0) -> int:
    """A stored integer, checked to be an ``int`` (not bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"not an integer >= {minimum}: {value!r}")
    return value


def bool_from_data(value: Any) -> bool:
    """A stored flag, checked to be a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"not a bool: {value!r}")
    return value


def mean_to_data(mean: stats.Mean) -> dict[str, Any]:
    """A ``river.stats.Mean`` as plain data."""
    return {"n": float_to_data(mean.n), "mean": float_to_data(mean._mean)}


def mean_from_data(data: Mapping[str, Any]) -> stats.Mean:
    """Rebuild a ``river.stats.Mean`` from :func:`mean_to_data` output."""
    mean = stats.Mean()
    mean.n = float_from_data(data["n"])
    mean._mean = float_from_data(data["mean"])
    if mean.n < 0:
        raise ValueError(f"negative count in running mean: {mean.n}")
    return mean


class RiverTrace(Trace):
    """A river wrapper's trace: the result at each drift of the batch (drifts are rare)."""

    __slots__ = ("results",)

    def __init__(self, detector: Detector, count: int) -> None:
        super().__init__(detector, count)
        #: {accepted values done: the result just after them}
        self.results: dict[int, DetectionResult] = {}

    def _after(self, accepted: int) -> DetectionResult | None:
        return self.results.get(accepted)


class RiverDetector(Detector):
    """Base of the river wrappers: acceptance, conversion and a tight batch loop.

    Subclasses build the river object in :meth:`_make_river` and (de)serialise its state.
    ``update_many`` validates a numpy batch once (a mask for non-finite or non-binary
    values) and then calls river's ``update`` in a plain loop, which gives the same states
    as one-by-one updates at close to river's own cost. Under :meth:`trace_many` the loop calls
    :meth:`_mark` at each drift (rare), which keeps the result of that moment in the trace.
    """

    #: Binary detectors take 0/1 (error indicators); numeric ones take finite reals.
    binary: ClassVar[bool] = False
    #: Whether the river detector has a warning zone.
    has_warning: ClassVar[bool] = False
    #: Binary only: hand river ``1 - value`` (for detectors that expect 1 = correct).
    invert: ClassVar[bool] = False

    _river: Any

    @abc.abstractmethod
    def _make_river(self) -> Any:
        """A fresh river detector configured from ``self._params``."""

    def _init_state(self) -> None:
        self._river = self._make_river()

    def _mark(self, trace: RiverTrace | None, index: int) -> None:
        """Keep in ``trace`` the result after the accepted value ``index``, which drifted;
        called by the batch loops with the detector's state as it is at that value."""
        if trace is None:  # update_many or a single update: nothing to keep
            return
        updates, state = self._updates, self._state
        self._updates, self._state = trace.before + index + 1, DriftState.DRIFT
        try:
            trace.results[index + 1] = self._result()
        finally:
            self._updates, self._state = updates, state

    def _accept(self, value: Any) -> bool:
        if not self.binary:
            return super()._accept(value)
        if isinstance(value, bool | np.bool_):
            return True
        return isinstance(value, int | float | np.integer | np.floating) and (
            value == 0 or value == 1
        )

    def _convert(self, value: Any) -> Any:
        """The accepted value in the form river gets it (float, or 0/1 for binary)."""
        if self.binary:
            return int(bool(value) != self.invert)
        return float(value)

    def _update_one(self, value: Any) -> DriftState:
        river = self._river
        river.update(self._convert(value))
        if river._drift_detected:
            return DriftState.DRIFT
        if self.has_warning and river._warning_detected:
            return DriftState.WARNING
        return DriftState.NONE

    def _run(self, values: list[Any], trace: RiverTrace | None) -> StateArray:
        """Feed converted values to river; one state per value."""
        out = np.zeros(len(values), dtype=np.int8)
        river = self._river
        update = river.update
        if self.has_warning:
            for i, x in enumerate(values):
                update(x)
                if river._drift_detected:
                    out[i] = 2
                    self._mark(trace, i)
                elif river._warning_detected:
                    out[i] = 1
        else:
            for i, x in enumerate(values):
                update(x)
                if river._drift_detected:
                    out[i] = 2
                    self._mark(trace, i)
        return out

    def _clean(
        self, values: Iterable[Any] | npt.NDArray[Any]
    ) -> tuple[list[Any], npt.NDArray[np.bool_] | None]:
        """Accepted values converted for river, and the accepted mask (``None``: all)."""
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            if values.ndim != 1:
                raise ValueError(
                    f"{self.kind}: update_many expects a 1-D batch, got {values.shape}"
                )
            if self.binary:
                ok = (values == 0) | (values == 1)
                target: type[np.generic] = np.int64
            else:
                ok = np.isfinite(values)
                target = np.float64
            kept = values if ok.all() else values[ok]
            converted = kept.astype(target, copy=False)  # (read only: tolist, 1 - x)
            if self.invert:
                converted = 1 - converted
            return converted.tolist(), (None if kept is values else ok)
        items = values if isinstance(values, list | tuple | np.ndarray) else list(values)
        accept, convert = self._accept, self._convert
        mask = np.fromiter((accept(v) for v in items), dtype=np.bool_, count=len(items))
        kept = [convert(v) for v, keep in zip(items, mask, strict=True) if keep]
        return kept, (None if len(kept) == len(items) else mask)

    def update_many(self, values: Iterable[Any] | npt.NDArray[Any]) -> StateArray:
        """Use a batch; same states as one-by-one :meth:`update` calls, only faster."""
        return self._batch(values, None)

    def trace_many(self, values: Iterable[Any] | npt.NDArray[Any]) -> tuple[StateArray, Trace]:
        trace = RiverTrace(self, 0)
        states = self._batch(values, trace)
        trace.count = len(states)
        return states, trace

    def _batch(
        self, values: Iterable[Any] | npt.NDArray[Any], trace: RiverTrace | None
    ) -> StateArray:
        kept, mask = self._clean(values)
        states = self._run(kept, trace) if kept else np.zeros(0, dtype=np.int8)
        if kept:
            self._updates += len(kept)
            self._state = STATE_OF[states[-1]]
        if trace is not None:
            trace.mask = mask
        if mask is None:
            return states
        self._rejected += len(mask) - len(kept)
        out = np.zeros(len(mask), dtype=np.int8)
        out[mask] = states
        return out

    def _flags_to_data(self) -> dict[str, bool]:
        data = {"drift_detected": bool(self._river._drift_detected)}
        if self.has_warning:
            data["warning_detected"] = bool(self._river._warning_detected)
        return data

    def _flags_from_data(self, data: Mapping[str, Any]) -> None:
        self._river._drift_detected = bool_from_data(data["drift_detected"])
        if self.has_warning:
            self._river._warning_detected = bool_from_data(data["warning_detected"])
