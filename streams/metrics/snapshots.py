"""Gauge families replaced whole, atomically: what a scrape sees is one consistent picture.

Levels copied from the engine (detector statistics, performance, coverage) and from the
consumer (lag per partition) are rebuilt from scratch on every update. Clearing and
re-setting ``prometheus_client.Gauge`` children would let a scrape see a half-empty set and
would keep series of models this replica no longer owns; swapping a finished family does not.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> snaps = SnapshotGauges({"demo_lag": ("Lag.", ("partition",))})
>>> registry = CollectorRegistry()
>>> registry.register(snaps)
>>> snaps.replace("demo_lag", [(("0",), 5.0), (("1",), 0.0)])
>>> [line for line in generate_latest(registry).decode().splitlines() if line[0] != "#"]
['demo_lag{partition="0"} 5.0', 'demo_lag{partition="1"} 0.0']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Sample", "SnapshotGauges"]

#: One gauge sample: label values in the family's label order, and the value.
Sample = tuple[tuple[str, ...], float]


class SnapshotGauges(Collector):
    """A fixed set of gauge families, each replaced whole by :meth:`replace`."""

    def __init__(self, families: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        self._specs = {name: (doc, tuple(labels)) for name, (doc, labels) in families.items()}
        self._current: dict[str, GaugeMetricFamily] = {}

    def replace(self, name: str, samples: Iterable[Sample]) -> None:
        """Make ``samples`` the whole content of family ``name``."""
        doc, labels = self._specs[name]
        family = GaugeMetricFamily(name, doc, labels=labels)
        for values, value in samples:
            family.add_metric(list(values), value)
        self._current[name] = family  # one reference swap: atomic for a concurrent scrape

    def samples(self, name: str) -> list[Sample]:
        """The current samples of ``name`` (for tests and health checks)."""
        family = self._current.get(name)
        if family is None:
            return []
        labels = self._specs[name][1]
        return [(tuple(s.labels[k] for k in labels), s.value) for s in family.samples]

    def describe(self) -> Iterator[Metric]:
        for name, (doc, labels) in self._specs.items():
            yield GaugeMetricFamily(name, doc, labels=labels)

    def collect(self) -> Iterator[Metric]:
        yield from list(self._current.values())
