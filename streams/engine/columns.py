"""Turn a batch of feature values into a column and its quality flags, vectorised.

A value is *missing* (None, NaN), *invalid* (wrong type, out of range, not an allowed
category) or usable. Only usable values reach the drift statistics.

>>> c = numeric_column([1.0, None, "x", 7.0, float("inf")], (0.0, 5.0))
>>> c.values.tolist()[:1], c.missing.tolist(), c.invalid.tolist()
([1.0], [False, True, False, False, False], [False, False, True, True, True])
>>> c = categorical_column(["a", None, 3.0, "z"], "string", frozenset({"a", "b"}))
>>> c.values, c.missing.tolist(), c.invalid.tolist()
(['a', None, None, 'z'], [False, True, False, False], [False, False, True, True])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from detectors.profile import category_key

__all__ = ["Column", "ValueKind", "categorical_column", "numeric_column", "value_kind"]

#: What the first value of a feature looked like: a number, a string, or a bool.
ValueKind = Literal["number", "string", "bool"]
BoolArray = npt.NDArray[np.bool_]

_NUMBER_TYPES: Final = frozenset({float, int})
_NUMBER_OR_NONE: Final = frozenset({float, int, type(None)})
_STRING: Final = frozenset({str})


def value_kind(value: Any) -> ValueKind | None:
    """The kind of a feature value (``None`` when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


@dataclass(slots=True)
class Column:
    """``values`` (float array for numbers; list of category keys otherwise) with flags;
    ``raw`` are the values as received."""

    values: Any
    missing: BoolArray
    invalid: BoolArray
    raw: list[Any]
    #: where the feature applies (``None``: everywhere); see ``ModelState._columns``
    applies: BoolArray | None = None

    @property
    def ok(self) -> BoolArray:
        return ~(self.missing | self.invalid)


def numeric_column(raw: list[Any], value_range: tuple[float, float] | None) -> Column:
    """Numbers as float64 (NaN where missing or invalid); bools and strings are invalid."""
    n = len(raw)
    types = set(map(type, raw))
    if types <= _NUMBER_OR_NONE:
        values = np.array(raw, dtype=np.float64)
        missing = np.isnan(values)
        invalid = np.isinf(values)
    else:
        values = np.fromiter(
            (v if type(v) in _NUMBER_TYPES else math.nan for v in raw), np.float64, count=n
        )
        missing = np.fromiter(
            (v is None or (type(v) is float and math.isnan(v)) for v in raw), np.bool_, count=n
        )
        invalid = ~missing & ~np.isfinite(values)
    if value_range is not None:
        with np.errstate(invalid="ignore"):
            invalid |= (values < value_range[0]) | (values > value_range[1])
    return Column(values, missing, invalid, raw)


def categorical_column(
    raw: list[Any], kind: ValueKind | None, allowed: frozenset[str] | None
) -> Column:
    """Category keys (see :func:`detectors.profile.category_key`); values of another kind
    than ``kind`` (the feature's first value; ``None``: any), and categories outside
    ``allowed``, are invalid."""
    n = len(raw)
    types = set(map(type, raw))
    if types <= _STRING and kind in ("string", None):
        keys: list[str | None] = list(raw)
        missing = np.zeros(n, dtype=np.bool_)
        invalid = np.zeros(n, dtype=np.bool_)
    else:
        missing = np.fromiter(
            (v is None or (type(v) is float and math.isnan(v)) for v in raw), np.bool_, count=n
        )
        if kind == "string":
            keys = [v if type(v) is str else None for v in raw]
        elif kind == "bool":
            keys = [category_key(v) if type(v) is bool else None for v in raw]
        elif kind == "number":
            keys = [None if type(v) is str or type(v) is bool else category_key(v) for v in raw]
        else:  # any category key
            keys = [category_key(v) for v in raw]
        invalid = ~missing & np.fromiter((k is None for k in keys), np.bool_, count=n)
    if allowed is not None:
        outside = np.fromiter((k is not None and k not in allowed for k in keys), np.bool_, n)
        invalid |= outside
    return Column(keys, missing, invalid, raw)
