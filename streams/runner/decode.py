"""Step "decode" of the loop: Kafka messages to engine records, bad ones set aside.

Only messages that are new for a partition we own are decoded (see :class:`OffsetBook`, the
*fetched* positions); each one advances its partition's fetched offset, whether it decodes or
not, because a bad message is handled too: it goes to the dead-letter topic.

Decoded records and rejected messages are grouped by topic-partition, in offset order, with
the key the aligner merges the two input topics on (:mod:`streams.runner.align`): a record's
event time (its ``timestamp``, else the Kafka message timestamp); a rejected message has no
time of its own and keeps its place behind its partition's previous record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, cast

from confluent_kafka import KafkaError, Message

from streams.engine.records import InputRecord
from streams.events import (
    EventDecodeError,
    decode_ground_truth,
    decode_prediction,
    epoch_seconds,
)
from streams.runner.offsets import OffsetBook

__all__ = ["DecodedBatch", "Lane", "Rejected", "decode_batch"]

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
    """The messages of one poll by topic-partition (``lanes``), and consumer errors.

    ``models`` holds the (partition, model_id) pairs seen, so the runner knows which models'
    status belongs to which partition's checkpoint.
    """

    lanes: dict[tuple[str, int], Lane] = field(default_factory=dict)
    errors: list[KafkaError] = field(default_factory=list)
    models: set[tuple[int, str]] = field(default_factory=set)
    skipped: int = 0


def decode_batch(messages: list[Message], predictions_topic: str, book: OffsetBook) -> DecodedBatch:
    """Decode ``messages``; those of ``predictions_topic`` are predictions, others ground truth."""
    batch = DecodedBatch()
    lanes = batch.lanes
    models = batch.models
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
        except EventDecodeError as exc:
            lane.keys.append(_NO_TIME)
            lane.items.append(Rejected(message, exc.reason))
            continue
        key = message.key()
        if key != event.model_id.encode():
            # the key decides the partition, and a model's state lives with its partition
            lane.keys.append(_NO_TIME)
            lane.items.append(Rejected(message, _key_mismatch(event.model_id, key)))
            continue
        models.add((partition, event.model_id))
        kafka_time = message.timestamp()[1] / 1000.0
        ts = event.timestamp
        lane.keys.append(
            kafka_time if ts is None else ts if type(ts) is float else epoch_seconds(ts)
        )
        lane.items.append(InputRecord(event, partition, offset, kafka_time))
    return batch


def _key_mismatch(model_id: str, key: bytes | None) -> str:
    shown = "no key" if key is None else f"key {key.decode('utf-8', 'replace')!r}"
    return (
        f"$.model_id: {model_id!r} does not match the message's {shown} "
        "(predictions and ground truth must be keyed by model_id)"
    )
