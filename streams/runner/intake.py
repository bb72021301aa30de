"""The runner's side of the alignment: the :class:`~streams.runner.align.Aligner` wired to a
confluent-kafka consumer (cached high watermarks, ``pause``/``resume``) and to the engine (the
observed label delay that sets the default lead).

One call per loop turn, :meth:`Intake.take`: buffer the decoded lanes, hand back what the
merged sequence allows, and pause or resume topic-partitions. No broker request is made: the
"caught up" test reads the high watermark librdkafka cached from its last fetch response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

from confluent_kafka import Consumer, TopicPartition

from streams.runner.align import Aligner, Item
from streams.runner.decode import Lane
from streams.runner.offsets import OffsetBook

__all__ = ["AUTO_LEAD_BOUNDS", "Intake"]

log = logging.getLogger("driftradar.runner")

#: With ``join.max_lead_seconds`` unset, the lead allowed before a side is paused is the
#: median label delay observed on the partition, kept within these bounds (seconds). The
#: floor is wider than the event time one fetch of labels spans at ordinary rates: pausing
#: makes librdkafka drop what it prefetched, so a lead smaller than a fetch pauses and
#: resumes the labels at every fetch (measured: a catch-up with labels 1 s late ran 2x
#: slower with a 60 s floor). Memory is bounded by ``join.max_buffered`` either way.
AUTO_LEAD_BOUNDS: Final = (900.0, 3600.0)


class _DelayHint(Protocol):
    def label_delay(self, partition: int) -> float | None: ...


class Intake:
    """Aligned intake of the two input topics for the partitions this member owns.

    ``applied`` is the runner's offset book (what the engine has received: the offsets of
    the checkpoint); the intake keeps its own *fetched* book for deduplication.
    """

    def __init__(
        self,
        topics: tuple[str, str],
        applied: OffsetBook,
        *,
        max_lead: float | None,
        max_idle: float,
        max_buffered: int,
        engine: object = None,
    ) -> None:
        self._configured_lead = max_lead
        self._engine = engine if hasattr(engine, "label_delay") else None
        self._leads: dict[int, float] = {}
        self.aligner = Aligner(
            topics,
            max_lead=self._lead,
            max_idle=max_idle,
            max_buffered=max_buffered,
            applied=applied,
        )

    @property
    def fetched(self) -> OffsetBook:
        return self.aligner.fetched

    def own(self, partition: int, stored: Mapping[str, int]) -> None:
        self.aligner.own(partition, stored)
        self.refresh_lead(partition)

    def release(self, partition: int) -> None:
        self.aligner.release(partition)
        self._leads.pop(partition, None)

    def take(self, lanes: Mapping[tuple[str, int], Lane], consumer: Consumer) -> list[Item]:
        """Buffer ``lanes``; return what goes to the engine now; pause/resume as needed."""
        aligner = self.aligner
        aligner.add(lanes)

        def caught_up(topic: str, partition: int) -> bool:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            fetched = aligner.fetched.next_offset(topic, partition) or 0
            return bool(high >= 0 and fetched >= high)

        items = aligner.take(caught_up)
        if log.isEnabledFor(logging.DEBUG) and not items and aligner.buffered():
            log.debug(
                "waiting: %s",
                {
                    (t, p): (
                        consumer.get_watermark_offsets(TopicPartition(t, p), cached=True),
                        aligner.fetched.next_offset(t, p),
                    )
                    for p in aligner.applied.owned
                    for t in aligner.topics
                },
            )
        pause, resume = aligner.flow()
        if pause:
            consumer.pause([TopicPartition(t, p) for t, p in pause])
            log.debug("paused %s (leading the other topic or buffer full)", pause)
        if resume:
            # librdkafka resumes from the position after the last message it handed out,
            # which is exactly the aligner's fetched position
            consumer.resume([TopicPartition(t, p) for t, p in resume])
            log.debug("resumed %s", resume)
        return items

    def hold(self, lanes: Mapping[tuple[str, int], Lane]) -> None:
        """Buffer ``lanes`` without releasing anything (an outage: nothing can be applied)."""
        self.aligner.add(lanes)

    def paused(self, topic: str, partition: int) -> bool:
        """Whether flow control keeps ``topic``-``partition`` paused."""
        return self.aligner.is_paused(topic, partition)

    def refresh_lead(self, partition: int) -> None:
        """Re-derive the default lead of ``partition`` from the observed label delay."""
        if self._configured_lead is not None or self._engine is None:
            return
        delay = self._engine.label_delay(partition)
        low, high = AUTO_LEAD_BOUNDS
        self._leads[partition] = low if delay is None else min(high, max(low, float(delay)))

    def _lead(self, partition: int) -> float:
        if self._configured_lead is not None:
            return self._configured_lead
        return self._leads.get(partition, AUTO_LEAD_BOUNDS[0])

    def status(self, partition: int) -> dict[str, Any]:
        return self.aligner.status(partition)
