"""Parameter checks shared by detector ``Params.validate`` methods; errors name the parameter.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class P(Params):
...     size: int = 10
...     def validate(self) -> None:
...         require_int(self, "size", minimum=1)
>>> P(size=0)
Traceback (most recent call last):
...
detectors.base.InvalidParameterError: P: parameter 'size' must be >= 1, got 0
"""

from __future__ import annotations

import math

from detectors.base import InvalidParameterError, Params

__all__ = ["require_bool", "require_choice", "require_int", "require_real"]

#: Largest value accepted for integer parameters that river stores in a 32-bit field.
INT32_MAX = 2**31 - 1


def _fail(params: Params, name: str, problem: str) -> InvalidParameterError:
    return InvalidParameterError(type(params).__qualname__, name, problem)


def require_int(params: Params, name: str, *, minimum: int, maximum: int = INT32_MAX) -> None:
    """``params.<name>`` must be a plain ``int`` (not bool) in ``[minimum, maximum]``."""
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(params, name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise _fail(params, name, f"must be >= {minimum}, got {value}")
    if value > maximum:
        raise _fail(params, name, f"must be <= {maximum}, got {value}")


def require_real(
    params: Params,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """``params.<name>`` must be a finite real within the given (open or closed) bounds."""
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(params, name, f"must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise _fail(params, name, f"must be in {left}{lo}, {hi}{right}, got {value!r}")


def require_bool(params: Params, name: str) -> None:
    """``params.<name>`` must be ``True`` or ``False``."""
    value = getattr(params, name)
    if not isinstance(value, bool):
        raise _fail(params, name, f"must be true or false, got {value!r}")


def require_choice(params: Params, name: str, choices: tuple[str, ...]) -> None:
    """``params.<name>`` must be one of ``choices``."""
    value = getattr(params, name)
    if value not in choices:
        raise _fail(params, name, f"must be one of {', '.join(choices)}, got {value!r}")
