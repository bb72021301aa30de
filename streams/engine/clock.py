"""Event times of a stream's past positions, sampled: when did the new regime start?

A retrain request's data window starts where its trigger's evidence says the change began
(ADWIN's cut, the first bad performance window), a *position* in a stream — the model's
predictions, or a version's joined pairs. :class:`EventClock` keeps the event time of every
``every``-th position over the last ``keep`` samples (bounded memory; plain data in the
checkpoint), enough to map such a position back to an event time.

>>> clock = EventClock(every=4, keep=3)
>>> clock.add(1, np.arange(100.0, 120.0))   # positions 1..20 at times 100..119
>>> clock.positions.tolist()                # every 4th position, the last 3 kept
[12, 16, 20]
>>> clock.time_at(14), clock.time_at(2)     # the nearest sample at or after; else the oldest
(115.0, 111.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["EventClock"]


class EventClock:
    """Sampled ``position -> event time`` of one stream (positions count from 1)."""

    __slots__ = ("every", "keep", "positions", "times")

    def __init__(self, every: int = 64, keep: int = 1024) -> None:
        self.every = every
        self.keep = keep
        self.positions = np.zeros(0, dtype=np.int64)
        self.times = np.zeros(0, dtype=np.float64)

    def add(self, first: int, times: npt.NDArray[np.float64]) -> None:
        """The event times of positions ``first``, ``first + 1``, ... (one per value)."""
        if not times.size:
            return
        offset = (-first) % self.every  # first sampled index in this batch
        picked = np.arange(offset, times.size, self.every)
        if not picked.size:
            return
        self.positions = np.concatenate((self.positions, picked + first))[-self.keep :]
        self.times = np.concatenate((self.times, times[picked]))[-self.keep :]

    def time_at(self, position: int) -> float | None:
        """The event time of the nearest sample at or after ``position`` (the oldest kept
        sample for an older position; ``None`` before any sample)."""
        if not self.positions.size:
            return None
        index = min(int(np.searchsorted(self.positions, position)), self.positions.size - 1)
        return float(self.times[index])

    def count_since(self, time: float, total: int) -> int:
        """How many of the ``total`` positions so far came at or after ``time``: from the
        first sample at or after it (positions are roughly in time order; the sampling
        makes this exact to within ``every``)."""
        if not self.positions.size:
            return 0
        later = np.flatnonzero(self.times >= time)
        if not later.size:
            return 0
        return max(0, total - int(self.positions[later[0]]) + 1)

    def snapshot(self) -> list[Any]:
        return [self.positions.tolist(), self.times.tolist()]

    def restore(self, data: list[Any]) -> None:
        self.positions = np.asarray(data[0], dtype=np.int64)
        self.times = np.asarray(data[1], dtype=np.float64)
