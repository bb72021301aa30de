"""ADWIN's window (river's Rust ``AdaptiveWindowing``) as plain data, and back.

river 0.26 keeps ADWIN's state in a Rust object whose ``__getstate__`` is a bincode blob
(little-endian, fixed-width integers). We decode that blob into named fields, so snapshots
are readable data, and on restore we check the fields for consistency before encoding
them again, so that Rust never sees bytes we did not build ourselves (a corrupt blob makes
the Rust side panic or allocate without bound).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

from river._river_rust.drift import AdaptiveWindowing

__all__ = ["new_window", "window_from_data", "window_to_data"]

# delta, clock, max_buckets, min_window_length, grace_period, total, variance, width,
# total_width, n_buckets, max_n_buckets, tick, n_detections
_CORE = struct.Struct("<diQddddddiiii")
_LEN = struct.Struct("<Q")
_BUCKET_HEAD = struct.Struct("<QQ")  # max_size, current_idx
# the Python binding's own copy of the constructor arguments, after the core
_TAIL = struct.Struct("<diQii")
_INT32_MAX = 2**31 - 1
_MAX_BUCKET_LEVELS = 63  # bucket ``i`` holds summaries of 2**i values (u64 shift)
#: Non-empty once a state decoded here re-encoded to river's exact bytes.
_LAYOUT_CHECKED: list[bool] = []


def new_window(
    delta: float, clock: int, max_buckets: int, min_window_length: int, grace_period: int
) -> Any:
    """A fresh Rust window with these parameters."""
    return AdaptiveWindowing(
        delta=delta,
        clock=clock,
        max_buckets=max_buckets,
        min_window_length=min_window_length,
        grace_period=grace_period,
    )


def _args(helper: Any) -> tuple[float, int, int, int, int]:
    delta, clock, max_buckets, min_window_length, grace_period = helper.__getnewargs__()
    return delta, clock, max_buckets, min_window_length, grace_period


def window_to_data(helper: Any) -> dict[str, Any]:
    """Named fields of the Rust window; raises ``RuntimeError`` if river's layout changed."""
    blob: bytes = helper.__getstate__()
    args = _args(helper)
    core = _CORE.unpack_from(blob, 0)
    offset = _CORE.size
    (levels,) = _LEN.unpack_from(blob, offset)
    offset += _LEN.size
    buckets = []
    for _ in range(levels):
        _max_size, count = _BUCKET_HEAD.unpack_from(blob, offset)
        offset += _BUCKET_HEAD.size
        columns = []
        for _column in range(2):
            (length,) = _LEN.unpack_from(blob, offset)
            offset += _LEN.size
            values = struct.unpack_from(f"<{length}d", blob, offset)
            offset += 8 * length
            columns.append(list(values[:count]))
        buckets.append({"totals": columns[0], "variances": columns[1]})
    data = {
        "total": core[5],
        "variance": core[6],
        "width": core[7],
        "total_width": core[8],
        "n_buckets": core[9],
        "max_n_buckets": core[10],
        "tick": core[11],
        "n_detections": core[12],
        "buckets": buckets,
    }
    if not _LAYOUT_CHECKED:  # the layout is river's: one exact match per process suffices
        if _encode(args, data) != blob:
            raise RuntimeError("river's ADWIN state layout is not the one this wrapper knows")
        _LAYOUT_CHECKED.append(True)
    return data


def _encode(args: tuple[float, int, int, int, int], data: Mapping[str, Any]) -> bytes:
    delta, clock, max_buckets, min_window_length, grace_period = args
    parts = [
        _CORE.pack(
            delta,
            clock,
            max_buckets,
            float(min_window_length),
            float(grace_period),
            data["total"],
            data["variance"],
            data["width"],
            data["total_width"],
            data["n_buckets"],
            data["max_n_buckets"],
            data["tick"],
            data["n_detections"],
        ),
        _LEN.pack(len(data["buckets"])),
    ]
    capacity = max_buckets + 1
    for bucket in data["buckets"]:
        count = len(bucket["totals"])
        parts.append(_BUCKET_HEAD.pack(max_buckets, count))
        for column in (bucket["totals"], bucket["variances"]):
            padded = [*column, *([0.0] * (capacity - count))]
            parts.append(_LEN.pack(capacity) + struct.pack(f"<{capacity}d", *padded))
    parts.append(_TAIL.pack(delta, clock, max_buckets, min_window_length, grace_period))
    return b"".join(parts)


def _finite(data: Mapping[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"adwin window field {key!r} is not a finite number: {value!r}")
    return float(value)


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT32_MAX:
        raise ValueError(f"adwin window field {key!r} is not a 32-bit count: {value!r}")
    return value


def _checked(data: Mapping[str, Any], max_buckets: int) -> dict[str, Any]:
    """A consistent copy of the window fields, or ``ValueError`` naming what is wrong."""
    clean: dict[str, Any] = {
        key: _finite(data, key) for key in ("total", "variance", "width", "total_width")
    }
    for key in ("n_buckets", "max_n_buckets", "tick", "n_detections"):
        clean[key] = _count(data, key)
    raw_buckets = data["buckets"]
    if not isinstance(raw_buckets, list) or not 1 <= len(raw_buckets) <= _MAX_BUCKET_LEVELS:
        raise ValueError("adwin window field 'buckets' must be a list of 1 to 63 levels")
    buckets, width = [], 0
    for level, bucket in enumerate(raw_buckets):
        totals = [float(v) for v in bucket["totals"]]
        variances = [float(v) for v in bucket["variances"]]
        if len(totals) != len(variances) or len(totals) > max_buckets:
            raise ValueError(f"adwin bucket level {level} has inconsistent sizes")
        if not all(math.isfinite(v) for v in (*totals, *variances)):
            raise ValueError(f"adwin bucket level {level} holds a non-finite value")
        width += len(totals) << level
        buckets.append({"totals": totals, "variances": variances})
    if len(buckets) > 1 and not buckets[-1]["totals"]:
        raise ValueError("adwin window's oldest bucket level is empty")
    if width != clean["width"]:
        raise ValueError("adwin window width does not match its buckets")
    clean["buckets"] = buckets
    return clean


def window_from_data(
    data: Mapping[str, Any],
    delta: float,
    clock: int,
    max_buckets: int,
    min_window_length: int,
    grace_period: int,
) -> Any:
    """A Rust window holding the state that :func:`window_to_data` described."""
    args = (delta, clock, max_buckets, min_window_length, grace_period)
    helper = new_window(*args)
    helper.__setstate__(_encode(_args(helper), _checked(data, max_buckets)))
    return helper
