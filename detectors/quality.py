"""Data-quality expectations (in the spirit of Great Expectations), checked per window.

Each expectation marks every value as passing or failing (:meth:`failing_mask`, cheap and
vectorised, so the engine can keep failing events out of the drift statistics), and
reports the failing fraction of the last window; it enters drift (a quality alert) when
that fraction exceeds ``max_failing_fraction`` and, optionally, a warning above
``warning_fraction``. They accept any value: ``None`` and NaN are *missing*, which only
:class:`MissingRate` counts as failing (like Great Expectations, the other expectations
ignore missing values).

>>> rate = MissingRate(MissingRateParams(window_size=100, mode="tumbling"))
>>> states = rate.update_many([1.0] * 100 + [None, 2.0] * 50)
>>> states[99], states[199], rate.result().statistic
(np.int8(0), np.int8(2), 0.5)
>>> AllowedCategories(AllowedCategoriesParams(categories=("a", "b"))).failing_mask(
...     ["a", "z", None, 3])
array([False,  True, False,  True])
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.stats import binom

from detectors._checks import require_choice, require_real
from detectors._windowing import Verdict, WindowedDetector, WindowParams
from detectors.base import DriftState, Params
from detectors.profile import category_key, is_missing

__all__ = [
    "AllowedCategories",
    "AllowedCategoriesParams",
    "Expectation",
    "ExpectationParams",
    "MissingRate",
    "MissingRateParams",
    "TypeExpectation",
    "TypeExpectationParams",
    "ValueRange",
    "ValueRangeParams",
]

BoolArray = npt.NDArray[np.bool_]


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool | np.bool_) and isinstance(
        value, int | float | np.integer | np.floating
    )


@dataclass(frozen=True, slots=True)
class ExpectationParams(WindowParams):
    """Window shape plus the failing fraction that raises an alert (``warmup`` is unused)."""

    max_failing_fraction: float = 0.01
    warning_fraction: float | None = None
    #: Significance: drift also needs the window's failing count to have a one-sided
    #: binomial tail below ``alpha`` under a true rate of exactly ``max_failing_fraction``,
    #: so a source within its limit does not alert on every window a little above it.
    #: ``1`` (the default) lets the raw fraction decide; the stream engine uses ``0.001``.
    alpha: float = 1.0

    def validate(self) -> None:
        WindowParams.validate(self)
        require_real(self, "max_failing_fraction", low=0.0, high=1.0, high_open=True)
        require_real(self, "alpha", low=0.0, high=1.0, low_open=True)
        if self.warning_fraction is not None:
            require_real(self, "warning_fraction", low=0.0, high=self.max_failing_fraction)


#: No failing value in the window (shared: most windows of a healthy source).
_NONE_FAILING: npt.NDArray[np.uint16] = np.zeros(0, dtype=np.uint16)
_NONE_FAILING.flags.writeable = False
_NO_RING: npt.NDArray[np.int8] = np.zeros(0, dtype=np.int8)
_NO_RING.flags.writeable = False


class Expectation(WindowedDetector):
    """Base of the expectations: any value is accepted and turned into a pass/fail flag.

    A window of flags is mostly passes, so it is kept as the ring positions of its failing
    values, oldest first (none: nothing at all; every value failing: two bytes each up to
    65 536-value windows) instead of a byte per value: a model's two dozen checks then
    hold next to nothing. The window read from them is the one a ring would hold.
    """

    uses_reference: ClassVar[bool] = False
    code_dtype: type[np.generic] = np.int8
    _params: ExpectationParams

    def _init_state(self) -> None:
        super()._init_state()
        self._ring = _NO_RING  # (unused: the failing positions are the window)
        self._failing: npt.NDArray[np.unsignedinteger[Any]] = _NONE_FAILING

    def _failing_numbers(self) -> npt.NDArray[np.int64]:
        """Value numbers (1-based, among those stored) of the window's failing values: the
        one number in ``(seen - window_size, seen]`` at each kept ring position."""
        seen, size = self._seen, self._params.window_size
        return seen - (seen - 1 - self._failing.astype(np.int64)) % size

    def _ordered_window(self) -> npt.NDArray[Any]:
        n = min(self._seen, self._params.window_size)
        window = np.zeros(n, dtype=np.int8)
        if len(self._failing):
            window[self._failing_numbers() - (self._seen - n + 1)] = 1
        return window

    def _keep(self, window: npt.NDArray[Any], seen: int) -> None:
        self._failing = self._positions(window.nonzero()[0] + (seen - len(window) + 1))

    def _store(self, codes: npt.NDArray[Any]) -> None:
        if not len(self._failing) and not codes.any():  # a healthy source: nothing to do
            return
        seen_end = self._seen + len(codes)
        numbers = np.concatenate((self._failing_numbers(), codes.nonzero()[0] + (self._seen + 1)))
        self._failing = self._positions(numbers[numbers > seen_end - self._params.window_size])

    def _positions(self, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.unsignedinteger[Any]]:
        """Ring positions of the failing value ``numbers`` (ascending), in the fewest bytes."""
        if not len(numbers):
            return _NONE_FAILING
        size = self._params.window_size
        return ((numbers - 1) % size).astype(np.min_scalar_type(size - 1))

    @abc.abstractmethod
    def _fails(self, value: Any) -> bool:
        """Whether one (non-numpy-batch) value fails the expectation."""

    def _fails_array(self, values: npt.NDArray[Any]) -> BoolArray | None:
        """Vectorised check of a numeric/bool numpy array, or ``None`` to check one by one."""
        return None

    def _fails_strings(self, values: list[str]) -> BoolArray | None:
        """Vectorised check of a list of ``str`` values, or ``None`` to check one by one."""
        return None

    def failing_mask(self, values: Iterable[Any] | npt.NDArray[Any]) -> BoolArray:
        """One flag per value: ``True`` where the value fails the expectation."""
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            fast = self._fails_array(values.ravel())
            if fast is not None:
                return fast
        items = values if isinstance(values, list | tuple | np.ndarray) else list(values)
        if isinstance(items, list) and set(map(type, items)) == {str}:  # category names
            fast = self._fails_strings(items)
            if fast is not None:
                return fast
        fails = self._fails
        return np.fromiter((fails(v) for v in items), dtype=np.bool_, count=len(items))

    def _accept(self, value: Any) -> bool:
        return True

    def _prepare(
        self, values: list[Any] | npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
        return self.failing_mask(values).astype(np.int8), None

    def _encode(self, prepared: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return prepared

    def _valid_code(self, code: Any) -> bool:
        return code in (0, 1) and not isinstance(code, float)

    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        params = self._params
        failing = int(np.count_nonzero(window))
        fraction = failing / len(window)
        # Enter on a significant excess; once in drift, stay while above the limit at all
        # (hysteresis), so a fault that persists near significance alerts once.
        holding = self._last is not None and self._last.level is DriftState.DRIFT
        if fraction > params.max_failing_fraction and (
            holding
            or binom.sf(failing - 1, len(window), params.max_failing_fraction) < params.alpha
        ):
            level = DriftState.DRIFT
        elif params.warning_fraction is not None and fraction > params.warning_fraction:
            level = DriftState.WARNING
        else:
            level = DriftState.NONE
        details = {"failing": failing, "expectation": self._description}
        return Verdict(level, fraction, params.max_failing_fraction, None, details)

    @abc.abstractmethod
    def describe(self) -> str:
        """The expectation in words, for alerts."""

    @functools.cached_property
    def _description(self) -> str:
        """:meth:`describe`, formatted once (parameters are frozen)."""
        return self.describe()


@dataclass(frozen=True, slots=True)
class MissingRateParams(ExpectationParams):
    """Alert when more than ``max_failing_fraction`` of a window is missing."""

    max_failing_fraction: float = 0.05


class MissingRate(Expectation):
    """Values should be present: ``None`` and NaN fail."""

    kind: ClassVar[str] = "missing_rate"
    params_type: ClassVar[type[Params]] = MissingRateParams

    def _fails(self, value: Any) -> bool:
        return is_missing(value)

    def _fails_array(self, values: npt.NDArray[Any]) -> BoolArray | None:
        return _nan(values)

    def _fails_strings(self, values: list[str]) -> BoolArray | None:
        return np.zeros(len(values), dtype=np.bool_)

    def describe(self) -> str:
        return f"at most {self._params.max_failing_fraction:g} of values missing"


TYPES = ("numeric", "string", "bool")


@dataclass(frozen=True, slots=True)
class TypeExpectationParams(ExpectationParams):
    """``expected`` is ``"numeric"`` (int/float, not bool), ``"string"`` or ``"bool"``."""

    expected: str = "numeric"

    def validate(self) -> None:
        ExpectationParams.validate(self)
        require_choice(self, "expected", TYPES)


class TypeExpectation(Expectation):
    """Present values should be of the expected JSON type."""

    kind: ClassVar[str] = "type"
    params_type: ClassVar[type[Params]] = TypeExpectationParams
    _params: TypeExpectationParams

    def _fails(self, value: Any) -> bool:
        if is_missing(value):
            return False
        expected = self._params.expected
        if expected == "numeric":
            return not _is_number(value)
        if expected == "string":
            return not isinstance(value, str)
        return not isinstance(value, bool | np.bool_)

    def _fails_array(self, values: npt.NDArray[Any]) -> BoolArray | None:
        is_bool = values.dtype.kind == "b"
        expected = self._params.expected
        ok = (expected == "bool") == is_bool and expected != "string"
        return np.full(len(values), not ok, dtype=np.bool_) & ~_nan(values)

    def _fails_strings(self, values: list[str]) -> BoolArray | None:
        return np.full(len(values), self._params.expected != "string", dtype=np.bool_)

    def describe(self) -> str:
        return f"values are {self._params.expected}"


def _nan(values: npt.NDArray[Any]) -> BoolArray:
    """Missing values of a numeric numpy array (NaN; other dtypes have none)."""
    missing: BoolArray = (
        np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), dtype=np.bool_)
    )
    return missing


@dataclass(frozen=True, slots=True)
class ValueRangeParams(ExpectationParams):
    """Present values should be numbers within ``[min_value, max_value]`` (``None``: open).

    The default is the probability range [0, 1].
    """

    min_value: float | None = 0.0
    max_value: float | None = 1.0

    def validate(self) -> None:
        ExpectationParams.validate(self)
        for name in ("min_value", "max_value"):
            if getattr(self, name) is not None:
                require_real(self, name)
        if self.min_value is not None and self.max_value is not None:
            self._require(
                "max_value",
                self.max_value >= self.min_value,
                f"must be >= min_value ({self.min_value})",
            )


class ValueRange(Expectation):
    """Present values should be numbers in range; non-numbers (strings, bools) fail."""

    kind: ClassVar[str] = "value_range"
    params_type: ClassVar[type[Params]] = ValueRangeParams
    _params: ValueRangeParams

    def _fails(self, value: Any) -> bool:
        if is_missing(value):
            return False
        if not _is_number(value):
            return True
        low, high = self._params.min_value, self._params.max_value
        return (low is not None and value < low) or (high is not None and value > high)

    def _fails_array(self, values: npt.NDArray[Any]) -> BoolArray | None:
        if values.dtype.kind == "b":
            return np.ones(len(values), dtype=np.bool_)
        low, high = self._params.min_value, self._params.max_value
        fails = np.zeros(len(values), dtype=np.bool_)
        if low is not None:
            fails |= values < low
        if high is not None:
            fails |= values > high
        return fails

    def _fails_strings(self, values: list[str]) -> BoolArray | None:
        return np.ones(len(values), dtype=np.bool_)  # strings are not numbers

    def describe(self) -> str:
        low = "-inf" if self._params.min_value is None else f"{self._params.min_value:g}"
        high = "inf" if self._params.max_value is None else f"{self._params.max_value:g}"
        return f"values within [{low}, {high}]"


@dataclass(frozen=True, slots=True)
class AllowedCategoriesParams(ExpectationParams):
    """Present values should be one of ``categories`` (compared by their JSON text, so
    ``True`` is ``"true"`` and ``3`` is ``"3"``)."""

    categories: tuple[str, ...] = ("true", "false")

    def validate(self) -> None:
        ExpectationParams.validate(self)
        value: Any = self.categories
        if isinstance(value, str) or not isinstance(value, list | tuple):
            self._fail("categories", f"must be a list of strings, got {value!r}")
        if not value or not all(isinstance(c, str) for c in value):
            self._fail("categories", f"must be a non-empty list of strings, got {value!r}")
        object.__setattr__(self, "categories", tuple(value))

    def to_dict(self) -> dict[str, Any]:
        out = Params.to_dict(self)
        out["categories"] = list(self.categories)
        return out


class AllowedCategories(Expectation):
    """Present values should be allowed categories; unseen ones (and non-categories) fail."""

    kind: ClassVar[str] = "allowed_categories"
    params_type: ClassVar[type[Params]] = AllowedCategoriesParams
    _params: AllowedCategoriesParams

    def _init_state(self) -> None:
        super()._init_state()
        self._allowed = frozenset(self._params.categories)

    def _fails(self, value: Any) -> bool:
        if is_missing(value):
            return False
        return category_key(value) not in self._allowed

    def _fails_strings(self, values: list[str]) -> BoolArray | None:
        allowed = self._allowed
        return np.fromiter((v not in allowed for v in values), dtype=np.bool_, count=len(values))

    def describe(self) -> str:
        return f"values in {{{', '.join(sorted(self._allowed))}}}"
