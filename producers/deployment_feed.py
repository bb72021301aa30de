"""Deployments from the ``model-deployments`` topic, as a simulator's deployment source.

:class:`KafkaDeploymentFeed` assigns itself every partition of the topic (no consumer group
to join, nothing committed), reads what the topic already holds up to its end when opened,
and afterwards answers each call with the deployments that arrived since, without waiting
(one non-blocking ``consume``, ~0.3 µs when nothing is there).

What the topic held before the feed opened is skipped (the model server starts with the
``--model-version`` it was given), unless ``from_beginning``: then those deployments are
returned by the first call, in topic order, so a restarted simulator serves the latest one.
"Skipping" is done by reading to the end rather than by asking for the end offset, which
the local broker (tansu) answers wrongly; the deployments topic is small.

A message that is not a valid :class:`~streams.core.events.Deployment` is reported to
``on_problem`` and skipped, as are consumer errors (the broker may come back).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from streams.core.errors import TopicLayoutError
from streams.core.events import Deployment, EventDecodeError, decode_deployment
from streams.core.kafka import consumer_config
from streams.core.settings import DEPLOYMENTS_TOPIC
from streams.core.topics import partition_counts

__all__ = ["FeedError", "KafkaDeploymentFeed"]

#: Messages taken per non-blocking poll.
_BATCH: Final = 100
_EOF: Final = KafkaError._PARTITION_EOF  # noqa: SLF001 (librdkafka's public code, _-named)


class FeedError(TopicLayoutError):
    """The deployments topic is missing, or could not be read to its end in time."""


class KafkaDeploymentFeed:
    """``feed(position) -> [Deployment, ...]``: the deployments published since the last call."""

    def __init__(
        self,
        bootstrap: str,
        topic: str = DEPLOYMENTS_TOPIC,
        *,
        from_beginning: bool = False,
        timeout: float = 10.0,
        on_problem: Callable[[str], None] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self._on_problem = on_problem
        count = partition_counts(bootstrap, [topic], timeout=timeout, config=extra)[topic]
        if count is None:
            raise FeedError(f"deployments topic {topic!r} does not exist")
        settings = {**(extra or {}), "enable.partition.eof": True}
        group = f"driftradar-simulate-{uuid.uuid4().hex[:12]}"  # never joined nor committed
        self._consumer = Consumer(consumer_config(bootstrap, group, settings))
        try:
            # Offset 0 rather than OFFSET_BEGINNING/END: no ListOffsets (wrong on tansu);
            # auto.offset.reset=earliest covers a log whose start was trimmed.
            self._consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
            existing = self._read_to_end(count, timeout)
        except BaseException:
            self._consumer.close()
            raise
        self._backlog = existing if from_beginning else []
        self.skipped = 0 if from_beginning else len(existing)

    def __call__(self, position: int = 0) -> list[Deployment]:
        """Deployments that arrived since the last call (the backlog first); never blocks."""
        found, self._backlog = self._backlog, []
        for message in self._consumer.consume(_BATCH, 0):
            self._take(message, found)
        return found

    def _read_to_end(self, partitions: int, timeout: float) -> list[Deployment]:
        deadline = time.monotonic() + timeout
        found: list[Deployment] = []
        at_end: set[int] = set()
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise FeedError(
                    f"could not read deployments topic {self.topic!r} to its end within "
                    f"{timeout:g} s ({len(at_end)}/{partitions} partitions)"
                )
            for message in self._consumer.consume(_BATCH, 0.05):
                error = message.error()
                if error is not None and error.code() == _EOF:
                    at_end.add(message.partition() or 0)
                    continue
                at_end.discard(message.partition() or 0)
                self._take(message, found)
        return found

    def _take(self, message: Message, found: list[Deployment]) -> None:
        error = message.error()
        if error is not None:
            if error.code() != _EOF:
                self._problem(f"reading {self.topic!r}: {error.str()}")
            return
        try:
            found.append(decode_deployment(message.value() or b""))
        except EventDecodeError as exc:
            where = f"{self.topic!r} partition {message.partition()} offset {message.offset()}"
            self._problem(f"skipping a message that is not a deployment ({where}): {exc}")

    def _problem(self, text: str) -> None:
        if self._on_problem is not None:
            self._on_problem(text)

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> KafkaDeploymentFeed:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
