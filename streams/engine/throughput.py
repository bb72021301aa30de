"""A model's processing-time throughput: its rate over a window against a moving average.

Throughput is an ops signal (processing time, not event time): a collapse of the event rate
to less than ``min_ratio`` of its moving average, once that average is at least ``min_rate``
events/s, raises one ``infrastructure`` alert per episode.

>>> from streams.engine.config import ThroughputConfig
>>> config = ThroughputConfig(window_seconds=10, min_ratio=0.2, min_rate=1)
>>> rate = Throughput()
>>> rate.tick(0.0, config) is None  # the first window starts
True
>>> rate.count += 500; rate.tick(10.0, config) is None  # 50/s: the average
True
>>> rate.count += 20; rate.tick(20.0, config)  # 2/s: a collapse
{'rate': 2.0, 'average_rate': 50.0, 'min_ratio': 0.2}
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.engine.config import ThroughputConfig

__all__ = ["Throughput"]


class Throughput(msgspec.Struct):
    """Events counted in the current window since ``start``, the last window's ``rate``,
    the moving ``average`` and whether the rate is ``collapsed`` (plain data as it is)."""

    start: float | None = None
    count: int = 0
    average: float | None = None
    collapsed: bool = False
    rate: float | None = None

    def tick(self, now: float, config: ThroughputConfig) -> dict[str, Any] | None:
        """Close the window if ``window_seconds`` have passed; the alert details when the
        rate has just collapsed, else ``None``."""
        if self.start is None:
            self.start, self.count = now, 0
            return None
        elapsed = now - self.start
        if elapsed < config.window_seconds:
            return None
        rate = self.count / elapsed
        average = self.average
        self.start, self.count, self.rate = now, 0, rate
        collapsed = (
            average is not None and average >= config.min_rate and rate < config.min_ratio * average
        )
        entered = collapsed and not self.collapsed
        self.collapsed = collapsed
        if not collapsed:  # the baseline is not dragged down by the collapse itself
            self.average = rate if average is None else 0.8 * average + 0.2 * rate
        if not entered:
            return None
        return {"rate": rate, "average_rate": average, "min_ratio": config.min_ratio}
