"""Event-time alignment of the two input topics: one deterministic sequence per partition.

Partition *n* of ``predictions`` and of ``ground-truth`` hold the same models. Kafka fetches
them independently, so a monitor that applied records in fetch order would read one far
ahead of the other when both hold a backlog (after downtime, or on retained history) and its
join would see predictions hours before their labels. The :class:`Aligner` buffers what was
fetched, per topic-partition, and hands the engine the two sides of each partition *merged by
event time*, as Kafka Streams does for co-partitioned inputs (``PartitionGroup`` picks the
record with the smallest timestamp among the partitions' heads).

**The merge is a pure function of the two topics' contents.** It is the classic merge of two
queues by their heads (smaller event time first; ties: the prediction first; each side stays
in offset order, so a side whose times go back and forth is not reordered). A record is
handed over only once its place is certain: when the other side has a record at least as
late buffered. Equivalently (proved in the tests against the head-by-head merge): the
*i*-th record of one side precedes the *j*-th of the other iff the running maximum of its
side's keys up to *i* is <= (predictions) / < (ground truth) the other's up to *j*; so a
batch is merged with two ``numpy.searchsorted`` calls, whatever its size. After a crash the
records are fetched again from the checkpointed offsets and merged into the same sequence.

**Live tail: a side that has nothing to say does not stall the other.** When one side is
empty *and caught up* (its fetched position is at the broker's high watermark, from the
consumer's cached fetch metadata: no request) for ``max_idle`` seconds, the other side runs
on without it (it *free-runs*) until the quiet side shows a record at least as late again.
This is Kafka Streams' ``max.task.idle.ms`` (with KIP-695's "caught up" condition): a side
that still has data on the broker is always waited for, so catch-up and replays are exact;
only the order of a record that arrives on a quiet side after the other side ran on depends
on timing, as it does in Kafka Streams.

**Flow control.** A side whose buffer holds more than ``max_buffered`` records, or whose
consumed event time leads the other side's by more than ``max_lead`` seconds, is paused
(``Consumer.pause``: librdkafka stops fetching it) until it has drained to half of both;
this bounds the records held in memory whatever the backlog.

>>> aligner = Aligner(("p", "g"), max_lead=60.0, max_idle=1.0, max_buffered=100,
...                   clock=lambda: 0.0)
>>> aligner.own(0, {})
>>> from streams.runner.decode import Lane
>>> aligner.add({("p", 0): Lane([10.0, 20.0], ["p10", "p20"], [0, 1]),
...              ("g", 0): Lane([15.0], ["g15"], [0])})
>>> aligner.take(lambda topic, partition: False)
['p10', 'g15']
>>> aligner.status(0)["waiting_for"]  # p20 waits for a label at 20 s or later
'g'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import numpy as np

from streams.engine.records import InputRecord
from streams.runner.decode import Lane, Rejected
from streams.runner.offsets import OffsetBook

__all__ = ["Aligner", "Item", "merge_order"]

#: What the aligner hands out: a record for the engine or a message for the dead letters.
Item: TypeAlias = InputRecord | Rejected
_NO_TIME: Final = -math.inf


def merge_order(left: np.ndarray, right: np.ndarray) -> tuple[int, int, np.ndarray]:
    """How many of each side can go now, and in which order (indices into left + right).

    ``left`` and ``right`` are the merge keys of the two sides' buffered records, in offset
    order. Returns ``(n_left, n_right, order)``: the first ``n_left`` / ``n_right`` records
    are certain of their place, and ``order`` lists them merged (``k < n_left`` is
    ``left[k]``, else ``right[k - n_left]``). Ties go to ``left``.

    >>> merge_order(np.array([1.0, 5.0, 2.0]), np.array([3.0]))
    (1, 1, array([0, 1]))
    >>> merge_order(np.array([1.0, 5.0, 2.0]), np.array([3.0, 9.0]))
    (3, 1, array([0, 3, 1, 2]))
    """
    a = np.maximum.accumulate(left)
    b = np.maximum.accumulate(right)
    n_left = int(np.searchsorted(a, b[-1], side="right"))
    n_right = int(np.searchsorted(b, a[-1], side="left"))
    a, b = a[:n_left], b[:n_right]
    order = np.empty(n_left + n_right, dtype=np.int64)
    order[np.arange(n_left) + np.searchsorted(b, a, side="left")] = np.arange(n_left)
    order[np.arange(n_right) + np.searchsorted(a, b, side="right")] = np.arange(
        n_left, n_left + n_right
    )
    return n_left, n_right, order


@dataclass(slots=True)
class _Side:
    """What is buffered of one topic-partition, and its flow-control state."""

    topic: str
    keys: list[float] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    consumed: float = _NO_TIME  # largest merge key ever buffered
    paused: bool = False
    pauses: int = 0  # times paused since assignment
    free_run: bool = False  # runs on while the other side is quiet (see the module doc)

    def pop(self, n: int) -> tuple[list[Item], int]:
        """Drop the first ``n`` records; return them and the last one's offset."""
        items, last = self.items[:n], self.offsets[n - 1]
        del self.keys[:n], self.items[:n], self.offsets[:n]
        return items, last


@dataclass(slots=True)
class _Partition:
    sides: tuple[_Side, _Side]
    blocked_since: float | None = None  # when one side started waiting for an empty other


class Aligner:
    """Merges the two input topics of each owned partition by event time (module doc).

    ``topics`` = ``(predictions, ground truth)``. ``max_lead`` may be a number or a
    function of the partition (the runner derives it from the observed label delay).
    The aligner keeps the *fetched* positions (:attr:`fetched`, for the decode step); every
    record it hands out advances ``applied`` (the offsets saved with the engine state).
    """

    def __init__(
        self,
        topics: tuple[str, str],
        *,
        max_lead: float | Callable[[int], float],
        max_idle: float,
        max_buffered: int,
        applied: OffsetBook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_idle < 0:
            raise ValueError(f"max_idle must be >= 0, got {max_idle}")
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be >= 1, got {max_buffered}")
        self.topics = topics
        self._max_lead = max_lead
        self.max_idle = float(max_idle)
        self.max_buffered = int(max_buffered)
        self.fetched = OffsetBook(topics)
        self.applied = applied if applied is not None else OffsetBook(topics)
        self._clock = clock
        self._partitions: dict[int, _Partition] = {}

    # -- ownership -------------------------------------------------------------------------

    def own(self, partition: int, stored: Mapping[str, int]) -> None:
        """Take ``partition`` over from the ``stored`` offsets (both books start there)."""
        self.fetched.own(partition, stored)
        self.applied.own(partition, stored)
        self._partitions[partition] = _Partition((_Side(self.topics[0]), _Side(self.topics[1])))

    def release(self, partition: int) -> None:
        """Forget ``partition``: its buffered records were never applied (the next owner
        fetches them again from the checkpointed offsets)."""
        self.fetched.release(partition)
        self.applied.release(partition)
        self._partitions.pop(partition, None)

    # -- the loop --------------------------------------------------------------------------

    def add(self, lanes: Mapping[tuple[str, int], Lane]) -> None:
        """Buffer newly fetched records (``decode_batch``'s lanes, offset order per lane)."""
        for (topic, partition), lane in lanes.items():
            state = self._partitions.get(partition)
            if state is None:
                continue
            side = state.sides[0 if topic == self.topics[0] else 1]
            side.keys += lane.keys
            side.items += lane.items
            side.offsets += lane.offsets
            latest = max(lane.keys)
            if latest > side.consumed:
                side.consumed = latest

    def take(self, caught_up: Callable[[str, int], bool]) -> list[Item]:
        """The records whose place in each partition's merged sequence is certain (plus
        those a free-running side may give), in that order; ``applied`` advances past them.

        ``caught_up(topic, partition)``: whether everything on the broker was fetched.
        """
        out: list[Item] = []
        now = self._clock()
        for partition, state in self._partitions.items():
            out += self._take_partition(partition, state, caught_up, now)
        return out

    def _take_partition(
        self,
        partition: int,
        state: _Partition,
        caught_up: Callable[[str, int], bool],
        now: float,
    ) -> list[Item]:
        left, right = state.sides
        out: list[Item] = []
        if left.keys and right.keys:
            n_left, n_right, order = merge_order(np.asarray(left.keys), np.asarray(right.keys))
            taken = self._pop(partition, left, n_left) + self._pop(partition, right, n_right)
            out = [taken[k] for k in order.tolist()]
            for side, other in ((left, right), (right, left)):
                if other.keys:  # the other side is ahead: this one follows the order again
                    side.free_run = False
            state.blocked_since = None  # both sides spoke: the idle time starts again
        waiting = left if left.keys else right if right.keys else None
        if waiting is None:
            state.blocked_since = None
            return out
        quiet = right if waiting is left else left
        out += self._pop(partition, waiting, _leading_rejects(waiting.keys))
        if not waiting.keys:
            state.blocked_since = None
            return out
        if state.blocked_since is None:
            state.blocked_since = now
        if caught_up(quiet.topic, partition) and (
            waiting.free_run or now - state.blocked_since >= self.max_idle
        ):
            waiting.free_run = True
            out += self._pop(partition, waiting, len(waiting.keys))
            state.blocked_since = None
        return out

    def _pop(self, partition: int, side: _Side, n: int) -> list[Item]:
        if n == 0:
            return []
        items, last = side.pop(n)
        self.applied.advance(side.topic, partition, last)
        return items

    def flow(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Topic-partitions to pause and to resume now (flow control, module doc)."""
        pause: list[tuple[str, int]] = []
        resume: list[tuple[str, int]] = []
        for partition, state in self._partitions.items():
            max_lead = self.max_lead(partition)
            for side, other in (state.sides, state.sides[::-1]):
                n = len(side.keys)
                lead = side.consumed - other.consumed if other.consumed > _NO_TIME else 0.0
                if not side.paused and n and (n > self.max_buffered or lead > max_lead):
                    side.paused = True
                    side.pauses += 1
                    pause.append((side.topic, partition))
                elif side.paused and (
                    not n or (2 * n <= self.max_buffered and 2 * lead <= max_lead)
                ):
                    side.paused = False
                    resume.append((side.topic, partition))
        return pause, resume

    # -- reading ---------------------------------------------------------------------------

    def max_lead(self, partition: int) -> float:
        lead = self._max_lead
        return float(lead(partition) if callable(lead) else lead)

    def is_paused(self, topic: str, partition: int) -> bool:
        """Whether flow control paused ``topic`` of ``partition``."""
        state = self._partitions.get(partition)
        if state is None or topic not in self.topics:
            return False
        return state.sides[self.topics.index(topic)].paused

    def buffered(self) -> int:
        """Records held, over all partitions and both sides."""
        return sum(len(s.keys) for state in self._partitions.values() for s in state.sides)

    def status(self, partition: int) -> dict[str, Any]:
        """Plain data for ``driftradar status``: per side buffered records, paused, free
        running; ``waiting_for`` names the topic the partition waits for (or None); and
        ``lead_seconds``, how far predictions' consumed event time is ahead of labels'."""
        state = self._partitions.get(partition)
        if state is None:
            return {}
        left, right = state.sides
        waiting_for = None
        for side, other in ((left, right), (right, left)):
            if side.paused or (side.keys and not other.keys and not side.free_run):
                waiting_for = other.topic
        lead = (
            left.consumed - right.consumed
            if left.consumed > _NO_TIME and right.consumed > _NO_TIME
            else None
        )
        return {
            "waiting_for": waiting_for,
            "paused": [s.topic for s in state.sides if s.paused],
            "pauses": sum(s.pauses for s in state.sides),
            "free_running": [s.topic for s in state.sides if s.free_run],
            "buffered": {s.topic: len(s.keys) for s in state.sides},
            "lead_seconds": lead,
            "max_lead_seconds": self.max_lead(partition),
        }


def _leading_rejects(keys: list[float]) -> int:
    """Rejected messages at the head of a side (no event time): they go at once."""
    n = 0
    for key in keys:
        if key != _NO_TIME:
            break
        n += 1
    return n
