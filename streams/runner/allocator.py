"""glibc's malloc, tuned for a process that makes and frees multi-megabyte numpy temporaries
many times a second (window evaluations, bootstrap calibrations of a model's baseline).

By default glibc maps blocks above a moving threshold (128 KiB at first) with ``mmap`` and
gives the top of the heap back to the system once more than twice that is free: a
temporary of a few MiB is then mapped, unmapped or trimmed, and faulted in again page by
page the next time, over and over. Here blocks up to 32 MiB come from the heap and up to
128 MiB of free heap is kept (plus 16 MiB of padding per growth): a 300-model backlog is
processed ~25 % faster (``python -m benchmarks.many_models``), for at most that much more
resident memory after a peak. A variable the user set (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``) wins over its value here;
``DRIFTRADAR_MALLOC_TUNING=0`` leaves the allocator alone.

Keeping freed memory has its price after a peak: a checkpoint of every model encodes
~0.25 MiB per model at once, and a backlog's batches leave their temporaries behind, all of it
free yet resident. The runner therefore hands free pages back after each checkpoint
(:func:`release_free_memory`, ``malloc_trim(0)``: a few milliseconds at hundreds of models,
once per checkpoint, not per temporary).

>>> tune_malloc({"DRIFTRADAR_MALLOC_TUNING": "0"})
{}
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["SETTINGS", "release_free_memory", "tune_malloc"]

_MIB: Final = 1024 * 1024
#: mallopt(3) parameter, value, and the environment variable that would set it at start.
SETTINGS: Final = (
    (-3, 32 * _MIB, "MALLOC_MMAP_THRESHOLD_"),  # M_MMAP_THRESHOLD
    (-1, 128 * _MIB, "MALLOC_TRIM_THRESHOLD_"),  # M_TRIM_THRESHOLD
    (-2, 16 * _MIB, "MALLOC_TOP_PAD_"),  # M_TOP_PAD
)
DISABLE_ENV: Final = "DRIFTRADAR_MALLOC_TUNING"


def tune_malloc(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Apply :data:`SETTINGS` with ``mallopt`` when the C library is glibc; returns what was
    set (empty elsewhere: musl, macOS, or when turned off)."""
    env = os.environ if environ is None else environ
    if env.get(DISABLE_ENV, "1") == "0":
        return {}
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return {}
    applied: dict[str, int] = {}
    for parameter, value, variable in SETTINGS:
        if variable not in env and mallopt(parameter, value) == 1:
            applied[variable] = value
    return applied


def release_free_memory() -> bool:
    """Give the free pages of every malloc arena back to the system (``malloc_trim(0)``);
    whether the C library did (glibc only; False elsewhere or when nothing was free)."""
    trim = _glibc_function("malloc_trim")
    return trim is not None and trim(0) == 1


@functools.cache  # (platform.libc_ver reads the interpreter's binary)
def _glibc_function(name: str) -> Any | None:
    """``name`` from the C library this process runs on, if that is glibc."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
