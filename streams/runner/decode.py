"""Step "decode" of the loop: Kafka messages to engine records, bad ones set aside.

Only messages that are new for a partition we own are decoded (see :class:`OffsetBook`, the
*fetched* positions); each one advances its partition's fetched offset, whether it decodes or
not, because a bad message is handled too: it goes to the dead-letter topic.

Decoded records and rejected messages are grouped by topic-partition, in offset order, with
the key the aligner merges the two input topics on (:mod:`streams.runner.align`): a record's
event time (its ``timestamp``, else the Kafka message timestamp); a rejected message has no
time of its own and keeps its place behind its partition's previous record.

Nothing a message provokes escapes this step: the contract's decoder turns every parse or
validation problem into :class:`~streams.core.events.EventDecodeError`, and anything else a
message could still raise here is caught and rejected with its type, so one message can
never stop a partition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from confluent_kafka import KafkaError, Message

from streams.core.events import (
    EventDecodeError,
    decode_ground_truth,
    decode_prediction,
    epoch_seconds,
)
from streams.engine.records import InputRecord
from streams.runner.offsets import OffsetBook

__all__ = ["DecodedBatch", "Lane", "Rejected", "decode_batch", "key_mismatch"]

log = logging.getLogger("driftradar.runner")

_NO_TIME = float("-inf")


class Rejected(NamedTuple):
    """A message bound for the dead-letter topic, and why."""

    message: Message
    reason: str


@dataclass(slots=True)
class Lane:
    """The new messages of one topic-partition, in offset order: merge keys, items, offsets."""

    keys: list[float] = field(default_factory=list)
    items: list[InputRecord | Rejected] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)


@dataclass(slots=True)
class DecodedBatch:
    """The messages of one poll by topic-partition (``lanes``), and consumer errors."""

    lanes: dict[tuple[str, int], Lane] = field(default_factory=dict)
    errors: list[KafkaError] = field(default_factory=list)
    skipped: int = 0


def decode_batch(messages: list[Message], predictions_topic: str, book: OffsetBook) -> DecodedBatch:
    """Decode ``messages``; those of ``predictions_topic`` are predictions, others ground truth."""
    batch = DecodedBatch()
    lanes = batch.lanes
    accepts = book.accepts
    advance = book.advance
    for message in messages:
        error = message.error()
        if error is not None:
            batch.errors.append(error)
            continue
        topic = cast(str, message.topic())
        partition = cast(int, message.partition())
        offset = cast(int, message.offset())
        if not accepts(topic, partition, offset):
            batch.skipped += 1  # already fetched (a refetch), or no longer ours
            continue
        advance(topic, partition, offset)
        lane = lanes.get((topic, partition))
        if lane is None:
            lane = lanes[(topic, partition)] = Lane()
        lane.offsets.append(offset)
        value = message.value()
        if value is None:
            lane.keys.append(_NO_TIME)
            lane.items.append(Rejected(message, "$: empty message (no value)"))
            continue
        try:
            event = (
                decode_prediction(value)
                if topic == predictions_topic
                else decode_ground_truth(value)
            )
            key = message.key()
            problem = None if key == event.model_id.encode() else key_mismatch(event.model_id, key)
        except EventDecodeError as exc:
            problem = exc.reason
        except Exception as exc:  # a last resort: no message may stop the loop
            _log_once(exc, topic, partition, offset)
            problem = f"$: cannot decode ({type(exc).__name__}: {exc})"
        if problem is not None:
            # a bad event, or a key that is not its model_id (the key decides the partition,
            # and a model's state lives with its partition)
            lane.keys.append(_NO_TIME)
            lane.items.append(Rejected(message, problem))
            continue
        kafka_time = message.timestamp()[1] / 1000.0
        ts = event.timestamp
        lane.keys.append(
            kafka_time if ts is None else ts if type(ts) is float else epoch_seconds(ts)
        )
        lane.items.append(InputRecord(event, partition, offset, kafka_time))
    return batch


_LOGGED: set[type[BaseException]] = set()


def _log_once(exc: Exception, topic: str, partition: int, offset: int) -> None:
    """The traceback of the first unexpected error of each type (a flood of junk must not
    flood the log: the dead letters keep every reason)."""
    if type(exc) not in _LOGGED:
        _LOGGED.add(type(exc))
        log.error(
            "unexpected %s decoding %s[%d]@%d (dead-lettered; further ones are not logged)",
            type(exc).__name__,
            topic,
            partition,
            offset,
            exc_info=exc,
        )


def key_mismatch(model_id: str, key: bytes | None) -> str:
    shown = "no key" if key is None else f"key {key.decode('utf-8', 'replace')!r}"
    return (
        f"$.model_id: {model_id!r} does not match the message's {shown} "
        "(every message of the monitored topics is keyed by its model_id)"
    )
