"""The next offset to consume, per input topic and partition, for the partitions we own.

These are the offsets saved with the engine state: after a restart the consumer seeks to
them, so a record is applied to the engine exactly once. A record below the next offset was
already applied (a refetch after a seek or rebalance) and is skipped.

>>> book = OffsetBook(("predictions", "ground-truth"))
>>> book.own(0, {"predictions": 10})
>>> book.accepts("predictions", 0, 9), book.accepts("predictions", 0, 10)
(False, True)
>>> book.advance("predictions", 0, 10)
>>> book.offsets(0)
{'predictions': 11}
>>> book.accepts("ground-truth", 1, 0)  # a partition we do not own
False
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["OffsetBook"]


class OffsetBook:
    """Next offsets of the owned partitions, and which partitions changed since a checkpoint."""

    def __init__(self, topics: tuple[str, ...]) -> None:
        self._topics = topics
        self._next: dict[tuple[str, int], int] = {}
        self._owned: set[int] = set()
        self._dirty: set[int] = set()

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    @property
    def dirty(self) -> frozenset[int]:
        """Partitions that consumed records since they were last checkpointed."""
        return frozenset(self._dirty)

    def own(self, partition: int, stored: Mapping[str, int]) -> None:
        """Take ``partition`` over, starting from the ``stored`` offsets (absent: beginning)."""
        self._owned.add(partition)
        for topic in self._topics:
            self._next.pop((topic, partition), None)
            if topic in stored:
                self._next[(topic, partition)] = int(stored[topic])

    def release(self, partition: int) -> None:
        self._owned.discard(partition)
        self._dirty.discard(partition)
        for topic in self._topics:
            self._next.pop((topic, partition), None)

    def accepts(self, topic: str, partition: int, offset: int) -> bool:
        """Whether a record at ``offset`` is new for a partition we own."""
        if partition not in self._owned:
            return False
        return offset >= self._next.get((topic, partition), 0)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` was applied."""
        self._next[(topic, partition)] = offset + 1
        self._dirty.add(partition)

    def next_offset(self, topic: str, partition: int) -> int | None:
        return self._next.get((topic, partition))

    def offsets(self, partition: int) -> dict[str, int]:
        """``{topic: next offset}`` of one partition, for the topics consumed so far."""
        return {
            topic: self._next[(topic, partition)]
            for topic in self._topics
            if (topic, partition) in self._next
        }

    def mark_clean(self, partitions: frozenset[int] | set[int]) -> None:
        self._dirty -= partitions
