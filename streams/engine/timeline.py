"""The batch timeline: what happened in a model's batch, put in record order before it
becomes alerts and retrain requests (:meth:`ModelState._settle`).

Every entry is one typed event with the ``position`` of the record that caused it; entries
of the same position keep the order in which they were added, so the outcome depends only
on the records, never on how the detectors were visited.

>>> timeline = Timeline()
>>> timeline.add(SchemaOverflow(position=7, first_ignored="f101"))
>>> timeline.add(SchemaOverflow(position=3, first_ignored="f100"))
>>> [entry.position for entry in timeline.in_order()]
[3, 7]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detectors.base import DetectionResult
from streams.engine.limits import MetricChange

if TYPE_CHECKING:
    from streams.engine.signals import Signal
    from streams.engine.versions import VersionState

__all__ = [
    "DriftEntered",
    "Entry",
    "EstimateChanged",
    "MetricChanged",
    "RequestDue",
    "SchemaOverflow",
    "Timeline",
    "VersionVerified",
]


@dataclass(frozen=True, slots=True)
class DriftEntered:
    """Signal ``signal`` entered drift through ``label``, at its ``update``-th value, with
    ``result`` as the detector's statistics then; ``number`` is the alert's ``position``
    (the model's prediction index, or the version's pair index for the error stream)."""

    position: int
    version: VersionState
    signal: Signal
    label: str
    update: int
    time: float
    result: DetectionResult
    number: int


@dataclass(frozen=True, slots=True)
class MetricChanged:
    """A rolling metric crossed (or came back within) one of its limits."""

    position: int
    version: VersionState
    change: MetricChange
    time: float


@dataclass(frozen=True, slots=True)
class EstimateChanged:
    """A label-free estimate crossed (or came back within) one of its limits."""

    position: int
    version: VersionState
    change: MetricChange
    time: float


@dataclass(frozen=True, slots=True)
class VersionVerified:
    """A new version reached its verification point after ``pairs`` labelled events."""

    position: int
    version: VersionState
    results: list[dict[str, Any]]
    pairs: int
    time: float


@dataclass(frozen=True, slots=True)
class RequestDue:
    """The pair that completes a waiting retrain request's evidence (``min_labelled``)."""

    position: int
    version: VersionState
    time: float


@dataclass(frozen=True, slots=True)
class SchemaOverflow:
    """A feature beyond ``max_features`` appeared (the first one ignored)."""

    position: int
    first_ignored: str


Entry = (
    DriftEntered | MetricChanged | EstimateChanged | VersionVerified | RequestDue | SchemaOverflow
)


class Timeline:
    """The entries of one batch; :meth:`in_order` gives them by position, then addition."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[tuple[int, int, Entry]] = []

    def add(self, entry: Entry) -> None:
        self._entries.append((entry.position, len(self._entries), entry))

    def __bool__(self) -> bool:
        return bool(self._entries)

    def in_order(self) -> Iterator[Entry]:
        for _, _, entry in sorted(self._entries, key=lambda e: (e[0], e[1])):
            yield entry
