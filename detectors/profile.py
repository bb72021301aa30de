"""Reference profiles: what one column looked like in training data, stored as plain data.

A profile is built from a sample (a numpy array or a list, one profile per column; reading
them from CSV / JSONL / Parquet files is the engine's job, :mod:`streams.engine.references`,
so this package stays free of I/O) or by a detector from its first ``warmup`` values, and
is what the
reference-window tests compare live windows with. Numeric columns keep a histogram on
quantile-based edges, count/mean/variance, min/max and a percentile grid; categorical
columns keep category counts. Profiles of the same column merge (counts add).

>>> ref = build_profile("age", np.arange(1000.0))
>>> ref.kind, ref.count, len(ref.counts), ref.quantile(0.5)
('numeric', 1000, 10, 499.5)
>>> plan = build_profile("plan", ["basic", "premium", "basic", None])
>>> plan.kind, plan.counts, plan.missing
('categorical', {'basic': 2, 'premium': 1}, 1)
>>> Profile.from_dict(plan.to_dict()) == plan
True
"""

from __future__ import annotations

import abc
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, overload

import numpy as np
import numpy.typing as npt

from detectors.base import DetectorError

__all__ = [
    "QUANTILE_LEVELS",
    "CategoricalProfile",
    "NumericProfile",
    "PackedFloats",
    "Profile",
    "ProfileError",
    "build_profile",
    "category_key",
    "is_missing",
    "profiles_from_columns",
]

#: Levels of the stored percentile grid (0, 0.01, …, 1): the reference CDF of the KS test.
QUANTILE_LEVELS: Final = np.linspace(0.0, 1.0, 101)
#: Default number of histogram bins (deciles, the usual PSI binning).
DEFAULT_BINS: Final = 10
#: The category a value falls in when a profile never saw it (mass absent from the reference).
UNSEEN: Final = "<unseen>"


class ProfileError(DetectorError, ValueError):
    """A profile cannot be built, read or merged; the message names the column and problem."""

    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"profile {column!r}: {problem}")
        self.column = column
        self.problem = problem


def is_missing(value: Any) -> bool:
    """``None`` and float NaN are missing values (counted, never a category or a number)."""
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def category_key(value: Any) -> str | None:
    """The category a value stands for, by its JSON text; ``None`` if it cannot be one.

    Strings are themselves, bools ``"true"``/``"false"``, integers (and integral floats)
    their decimal form. Missing, non-integral or non-finite numbers are not categories.

    >>> [category_key(v) for v in ("gold", True, 3, 3.0, 2.5, None)]
    ['gold', 'true', '3', '3', None, None]
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return None


def _finite_float(value: Any) -> float | None:
    """A usable number from a sample value (bools are not numbers), else ``None``."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _number(data: Mapping[str, Any], key: str, column: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(column, f"{key!r} must be a finite number, got {value!r}")
    return float(value)


def _count(data: Mapping[str, Any], key: str, column: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(column, f"{key!r} must be a non-negative integer, got {value!r}")
    return value


def _numbers(data: Mapping[str, Any], key: str, column: str) -> tuple[float, ...]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        raise ProfileError(column, f"{key!r} must be a list of numbers, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise ProfileError(column, f"{key!r} holds a non-number {item!r}")
        out.append(float(item))
    return tuple(out)


class PackedFloats(Sequence[float]):
    """An immutable sequence of floats held as 8 bytes each; equal to (and hashed as) the
    tuple of its values. A profile's percentile grid is 101 numbers that every model's
    reference keeps: in a tuple each is a float object and a pointer (32 bytes).

    >>> grid = PackedFloats([0.0, 0.5, 1.0])
    >>> grid == (0.0, 0.5, 1.0), grid[1], grid[1:], hash(grid) == hash((0.0, 0.5, 1.0))
    (True, 0.5, (0.5, 1.0), True)
    """

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[float] | npt.NDArray[np.float64]) -> None:
        array = np.array(values, dtype=np.float64).ravel()  # a copy, then read-only
        array.flags.writeable = False
        self._values = array

    def __len__(self) -> int:
        return int(self._values.size)

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[float, ...]: ...

    def __getitem__(self, index: int | slice) -> float | tuple[float, ...]:
        if isinstance(index, slice):
            return tuple(self._values[index].tolist())
        return float(self._values[index])

    def __iter__(self) -> Iterator[float]:
        return iter(self._values.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedFloats):
            return bool(np.array_equal(self._values, other._values))
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __reduce__(self) -> tuple[type[PackedFloats], tuple[tuple[float, ...]]]:
        return PackedFloats, (tuple(self),)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> npt.NDArray[Any]:
        """The values: read-only and not copied for ``np.asarray(grid)``, a writable copy
        when numpy asks for one (``np.array(grid)``)."""
        values = self._values if dtype is None else self._values.astype(dtype, copy=False)
        return values.copy() if copy and values is self._values else values


class Profile(abc.ABC):
    """Base of the two profile kinds; :meth:`from_dict` rebuilds either from plain data."""

    kind: ClassVar[str]
    column: str
    count: int
    missing: int

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able) that :meth:`from_dict` turns back into an equal profile."""

    @abc.abstractmethod
    def merge(self, other: Profile) -> Profile:
        """The profile of both samples together (same column and kind)."""

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Profile:
        """Rebuild a profile from :meth:`to_dict` output, checking every field."""
        if not isinstance(data, Mapping):
            raise ProfileError("?", f"a profile must be a mapping, got {type(data).__name__}")
        column = data.get("column")
        if not isinstance(column, str) or not column:
            raise ProfileError("?", f"'column' must be a non-empty string, got {column!r}")
        kind = data.get("kind")
        if kind == NumericProfile.kind:
            return NumericProfile.from_data(column, data)
        if kind == CategoricalProfile.kind:
            return CategoricalProfile.from_data(column, data)
        raise ProfileError(column, f"'kind' must be 'numeric' or 'categorical', got {kind!r}")

    def _check_mergeable(self, other: Profile) -> None:
        if other.column != self.column:
            raise ProfileError(self.column, f"cannot merge with the profile of {other.column!r}")
        if other.kind != self.kind:
            raise ProfileError(self.column, f"cannot merge a {self.kind} and a {other.kind} one")


@dataclass(frozen=True, slots=True)
class NumericProfile(Profile):
    """A numeric column: histogram on quantile edges, moments, extremes, percentile grid.

    ``edges`` has one more entry than ``counts``; the outer edges are the sample's min and
    max, and binning treats the first and last bins as open-ended (a live value below the
    minimum lands in the first bin). ``counts`` are floats because merging profiles with
    different edges re-bins one of them. ``quantiles`` holds the values at
    :data:`QUANTILE_LEVELS`.
    """

    kind: ClassVar[str] = "numeric"
    column: str
    count: int
    missing: int
    mean: float
    variance: float
    minimum: float
    maximum: float
    edges: Sequence[float]
    counts: Sequence[float]
    quantiles: Sequence[float]

    def __post_init__(self) -> None:
        for name in ("edges", "counts", "quantiles"):  # kept packed, whatever was given
            if not isinstance(getattr(self, name), PackedFloats):
                object.__setattr__(self, name, PackedFloats(getattr(self, name)))
        if self.count < 1:
            raise ProfileError(self.column, "a numeric profile needs at least one value")
        if len(self.edges) != len(self.counts) + 1 or len(self.counts) < 1:
            raise ProfileError(
                self.column,
                f"needs len(edges) == len(counts) + 1, got {len(self.edges)} "
                f"edges and {len(self.counts)} counts",
            )
        if any(b < a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ProfileError(self.column, "'edges' must be non-decreasing")
        if any(c < 0 for c in self.counts):
            raise ProfileError(self.column, "'counts' must be non-negative")
        if not math.isclose(sum(self.counts), self.count, rel_tol=1e-9):
            raise ProfileError(
                self.column, f"counts sum to {sum(self.counts)}, not to count={self.count}"
            )
        if len(self.quantiles) != len(QUANTILE_LEVELS):
            raise ProfileError(
                self.column,
                f"'quantiles' must hold {len(QUANTILE_LEVELS)} values "
                f"(levels 0, 0.01, ..., 1), got {len(self.quantiles)}",
            )
        if np.any(np.diff(np.asarray(self.quantiles)) < 0):
            raise ProfileError(self.column, "'quantiles' must be non-decreasing")
        if self.variance < 0 or self.minimum > self.maximum:
            raise ProfileError(self.column, "variance must be >= 0 and minimum <= maximum")

    @classmethod
    def from_values(
        cls, column: str, values: Iterable[Any] | npt.NDArray[Any], *, bins: int = DEFAULT_BINS
    ) -> NumericProfile:
        """Profile a sample; missing values (None, NaN) are counted, other non-numbers refused."""
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ProfileError(column, f"'bins' must be an integer >= 1, got {bins!r}")
        array, missing = _numeric_array(column, values)
        if array.size == 0:
            raise ProfileError(column, "no numeric values to profile")
        ordered = np.sort(array)
        # one call for the bin edges and the percentiles (same values as two calls)
        levels = np.concatenate((np.linspace(0, 1, bins + 1)[1:-1], QUANTILE_LEVELS))
        cuts = np.quantile(ordered, levels)
        inner = np.unique(cuts[: bins - 1])
        codes = np.searchsorted(inner, array, side="right")
        counts = np.bincount(codes, minlength=inner.size + 1).astype(float)
        lo, hi = float(ordered[0]), float(ordered[-1])
        return cls(
            column=column,
            count=int(array.size),
            missing=missing,
            mean=float(ordered.sum() / array.size),
            variance=float(ordered.var(ddof=1)) if array.size > 1 else 0.0,
            minimum=lo,
            maximum=hi,
            edges=(lo, *(float(e) for e in inner), hi),
            counts=tuple(float(c) for c in counts),
            quantiles=tuple(cuts[bins - 1 :].tolist()),
        )

    # -- use by the detectors ------------------------------------------------------------

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def inner_edges(self) -> npt.NDArray[np.float64]:
        """The cut points between bins (edges without the outer min and max)."""
        return np.asarray(self.edges[1:-1], dtype=np.float64)

    @property
    def proportions(self) -> npt.NDArray[np.float64]:
        """Share of the sample in each bin."""
        counts = np.asarray(self.counts, dtype=np.float64)
        shares: npt.NDArray[np.float64] = counts / counts.sum()
        return shares

    def cdf(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Reference CDF, linear between the stored percentiles (0 below min, 1 above max)."""
        points = np.asarray(x, dtype=np.float64)
        levels: npt.NDArray[np.float64] = np.interp(points, self.quantiles, QUANTILE_LEVELS)
        return levels

    def quantile(self, level: float) -> float:
        """Value at ``level`` in [0, 1], linear between the stored percentiles."""
        return float(np.interp(level, QUANTILE_LEVELS, self.quantiles))

    # -- merge and plain data ------------------------------------------------------------

    def merge(self, other: Profile) -> NumericProfile:
        """Both samples together: exact moments, extremes and counts; approximate percentiles.

        With identical edges the bin counts add exactly. With different edges, ``other`` is
        re-binned onto this profile's edges through its percentile-grid CDF (its values are
        taken as spread linearly between neighbouring percentiles), so the merged histogram
        keeps ``self``'s edges. Percentiles of the merge are read off the mixture CDF.
        """
        self._check_mergeable(other)
        assert isinstance(other, NumericProfile)  # guaranteed by _check_mergeable
        n1, n2 = self.count, other.count
        n = n1 + n2
        delta = other.mean - self.mean
        m2 = self.variance * (n1 - 1) + other.variance * (n2 - 1) + delta * delta * n1 * n2 / n
        if self.edges == other.edges:
            counts = np.asarray(self.counts) + np.asarray(other.counts)
        else:
            cuts = other.cdf(self.inner_edges)
            shares = np.diff(np.concatenate(([0.0], cuts, [1.0])))
            counts = np.asarray(self.counts) + n2 * shares
        lo, hi = min(self.minimum, other.minimum), max(self.maximum, other.maximum)
        grid = np.unique(np.concatenate((self.quantiles, other.quantiles)))
        mixture = (n1 * self.cdf(grid) + n2 * other.cdf(grid)) / n
        quantiles = np.interp(QUANTILE_LEVELS, mixture, grid)
        quantiles[0], quantiles[-1] = lo, hi
        return NumericProfile(
            column=self.column,
            count=n,
            missing=self.missing + other.missing,
            mean=self.mean + delta * n2 / n,
            variance=m2 / (n - 1) if n > 1 else 0.0,
            minimum=lo,
            maximum=hi,
            edges=(lo, *self.edges[1:-1], hi),
            counts=tuple(float(c) for c in counts),
            quantiles=tuple(float(q) for q in np.maximum.accumulate(quantiles)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "column": self.column,
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "variance": self.variance,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "quantiles": list(self.quantiles),
        }

    @classmethod
    def from_data(cls, column: str, data: Mapping[str, Any]) -> NumericProfile:
        """Rebuild from :meth:`to_dict` output (see :meth:`Profile.from_dict`)."""
        return cls(
            column=column,
            count=_count(data, "count", column),
            missing=_count(data, "missing", column),
            mean=_number(data, "mean", column),
            variance=_number(data, "variance", column),
            minimum=_number(data, "minimum", column),
            maximum=_number(data, "maximum", column),
            edges=_numbers(data, "edges", column),
            counts=_numbers(data, "counts", column),
            quantiles=_numbers(data, "quantiles", column),
        )


@dataclass(frozen=True, slots=True)
class CategoricalProfile(Profile):
    """A categorical column: how often each category (by :func:`category_key`) appeared."""

    kind: ClassVar[str] = "categorical"
    column: str
    count: int
    missing: int
    counts: Mapping[str, int]

    def __post_init__(self) -> None:
        if self.count < 1 or not self.counts:
            raise ProfileError(self.column, "a categorical profile needs at least one value")
        if any(not isinstance(k, str) for k in self.counts):
            raise ProfileError(self.column, "category names must be strings")
        if any(
            isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in self.counts.values()
        ):
            raise ProfileError(self.column, "category counts must be non-negative integers")
        if sum(self.counts.values()) != self.count:
            raise ProfileError(
                self.column, f"counts sum to {sum(self.counts.values())}, not count={self.count}"
            )
        if UNSEEN in self.counts:
            raise ProfileError(self.column, f"{UNSEEN!r} is reserved for unseen categories")

    @classmethod
    def from_values(cls, column: str, values: Iterable[Any]) -> CategoricalProfile:
        """Profile a sample; missing values are counted, unusable ones refused by position."""
        values = values if isinstance(values, list) else list(values)
        tally: Counter[str] = Counter()
        try:
            tally.update(values)  # in C
        except TypeError:  # an unhashable value: refused by position below
            pass
        else:
            if tally and all(type(key) is str for key in tally):  # names: themselves
                return cls(column, len(values), 0, dict(sorted(tally.items())))
        tally.clear()
        missing = 0
        for position, value in enumerate(values):
            if is_missing(value):
                missing += 1
                continue
            key = category_key(value)
            if key is None:
                raise ProfileError(
                    column, f"value {value!r} at position {position} is not a category"
                )
            tally[key] += 1
        if not tally:
            raise ProfileError(column, "no categorical values to profile")
        return cls(column, sum(tally.values()), missing, dict(sorted(tally.items())))

    @property
    def categories(self) -> list[str]:
        """Known categories, sorted (the order of :attr:`proportions`)."""
        return sorted(self.counts)

    @property
    def proportions(self) -> npt.NDArray[np.float64]:
        """Share of each known category, in :attr:`categories` order."""
        counts = np.asarray([self.counts[c] for c in self.categories], dtype=np.float64)
        shares: npt.NDArray[np.float64] = counts / counts.sum()
        return shares

    def merge(self, other: Profile) -> CategoricalProfile:
        """Both samples together: category counts add."""
        self._check_mergeable(other)
        assert isinstance(other, CategoricalProfile)  # guaranteed by _check_mergeable
        total = Counter(self.counts)
        total.update(other.counts)
        return CategoricalProfile(
            self.column,
            self.count + other.count,
            self.missing + other.missing,
            dict(sorted(total.items())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "column": self.column,
            "count": self.count,
            "missing": self.missing,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_data(cls, column: str, data: Mapping[str, Any]) -> CategoricalProfile:
        """Rebuild from :meth:`to_dict` output (see :meth:`Profile.from_dict`)."""
        counts = data.get("counts")
        if not isinstance(counts, Mapping):
            raise ProfileError(column, f"'counts' must be a mapping, got {counts!r}")
        return cls(
            column,
            _count(data, "count", column),
            _count(data, "missing", column),
            dict(sorted(counts.items())),
        )


def _numeric_array(
    column: str, values: Iterable[Any] | npt.NDArray[Any]
) -> tuple[npt.NDArray[np.float64], int]:
    """Finite floats of a sample and the number of missing values; refuses non-numbers."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        array = values.astype(np.float64).ravel()
        finite = np.isfinite(array)
        if np.isinf(array).any():
            raise ProfileError(column, "infinite values cannot be profiled")
        return array[finite], int((~finite).sum())
    kept: list[float] = []
    missing = 0
    for position, value in enumerate(values):
        if is_missing(value):
            missing += 1
            continue
        number = _finite_float(value)
        if number is None:
            raise ProfileError(column, f"value {value!r} at position {position} is not a number")
        kept.append(number)
    return np.asarray(kept, dtype=np.float64), missing


def _looks_numeric(values: Sequence[Any] | npt.NDArray[Any]) -> bool:
    """Whether every non-missing value of a sample is a real number (bools are not)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return True
    present = [v for v in values if not is_missing(v)]
    return bool(present) and all(_finite_float(v) is not None for v in present)


def build_profile(
    column: str,
    values: Iterable[Any] | npt.NDArray[Any],
    *,
    kind: str | None = None,
    bins: int = DEFAULT_BINS,
) -> Profile:
    """Profile one column; ``kind`` is ``"numeric"``, ``"categorical"`` or ``None`` (guess).

    The guess is numeric when every non-missing value is a number (not a bool).
    """
    if not isinstance(values, np.ndarray):
        values = list(values)
    if kind is None:
        kind = "numeric" if _looks_numeric(values) else "categorical"
    if kind == "numeric":
        return NumericProfile.from_values(column, values, bins=bins)
    if kind == "categorical":
        return CategoricalProfile.from_values(column, values)
    raise ProfileError(column, f"kind must be 'numeric' or 'categorical', got {kind!r}")


def profiles_from_columns(
    columns: Mapping[str, Iterable[Any] | npt.NDArray[Any]],
    *,
    kinds: Mapping[str, str] | None = None,
    bins: int = DEFAULT_BINS,
) -> dict[str, Profile]:
    """One profile per column of a ``{name: values}`` mapping (``kinds`` forces a kind)."""
    kinds = kinds or {}
    return {
        name: build_profile(name, values, kind=kinds.get(name), bins=bins)
        for name, values in columns.items()
    }
