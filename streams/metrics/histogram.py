"""A histogram that takes a whole batch of observations at once (numpy), as a collector.

``prometheus_client.Histogram.observe`` costs about a microsecond per value; at hundreds of
thousands of events per second the event-latency histogram would cost more than the work it
measures. :class:`BatchHistogram` bins a batch with one ``numpy.searchsorted`` and adds the
bin counts under a lock; it exposes the standard ``_bucket``/``_count``/``_sum`` series.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> hist = BatchHistogram("demo_seconds", "Demo.", ("topic",), buckets=(0.1, 1.0))
>>> registry.register(hist)
>>> hist.observe_many(("predictions",), [0.05, 0.5, 2.0, 0.25])
>>> print(generate_latest(registry).decode().split("# TYPE demo_seconds histogram\\n")[1], end="")
demo_seconds_bucket{le="0.1",topic="predictions"} 1.0
demo_seconds_bucket{le="1.0",topic="predictions"} 3.0
demo_seconds_bucket{le="+Inf",topic="predictions"} 4.0
demo_seconds_count{topic="predictions"} 4.0
demo_seconds_sum{topic="predictions"} 2.8
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["BatchHistogram"]


class BatchHistogram(Collector):
    """Cumulative histogram per label combination, fed by batches of values."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], *, buckets: Sequence[float]
    ) -> None:
        bounds = [float(b) for b in buckets if not math.isinf(b)]
        if not bounds or bounds != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be strictly increasing, got {list(buckets)}")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = np.asarray(bounds, dtype=np.float64)
        self._les = [repr(b) for b in bounds] + ["+Inf"]
        self._counts: dict[tuple[str, ...], npt.NDArray[np.int64]] = {}
        self._sums: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def observe_many(self, labels: tuple[str, ...], values: Iterable[float]) -> None:
        """Add every value of ``values``; NaN values are skipped."""
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {labels}")
        array = np.fromiter(values, dtype=np.float64)
        array = array[~np.isnan(array)]
        if array.size == 0:
            return
        # side="left": a value equal to a bound belongs to that bucket (le = less or equal).
        bins = np.bincount(
            np.searchsorted(self._bounds, array, side="left"), minlength=len(self._les)
        )
        total = float(array.sum())
        with self._lock:
            if labels in self._counts:
                self._counts[labels] += bins
                self._sums[labels] += total
            else:
                self._counts[labels] = bins.astype(np.int64)
                self._sums[labels] = total

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            items = [(k, v.cumsum(), self._sums[k]) for k, v in self._counts.items()]
        for labels, cumulative, total in items:
            buckets = [(le, float(c)) for le, c in zip(self._les, cumulative, strict=True)]
            family.add_metric(list(labels), buckets, total)
        yield family
