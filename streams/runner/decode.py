"""Step "decode" of the loop: Kafka messages to engine records, bad ones set aside.

Only messages that are new for a partition we own are decoded (see :class:`OffsetBook`);
each one advances its partition's next offset, whether it decodes or not, because a bad
message is handled too: it goes to the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import KafkaError, Message

from streams.engine.records import InputRecord
from streams.events import (
    EventDecodeError,
    decode_ground_truth,
    decode_prediction,
)
from streams.runner.offsets import OffsetBook

__all__ = ["DecodedBatch", "decode_batch"]


@dataclass(slots=True)
class DecodedBatch:
    """The records of one poll, the rejected messages with their reasons, and errors.

    ``models`` holds the (partition, model_id) pairs seen, so the runner knows which models'
    status belongs to which partition's checkpoint.
    """

    records: list[InputRecord] = field(default_factory=list)
    rejected: list[tuple[Message, str]] = field(default_factory=list)
    errors: list[KafkaError] = field(default_factory=list)
    models: set[tuple[int, str]] = field(default_factory=set)
    skipped: int = 0


def decode_batch(messages: list[Message], predictions_topic: str, book: OffsetBook) -> DecodedBatch:
    """Decode ``messages``; those of ``predictions_topic`` are predictions, others ground truth."""
    batch = DecodedBatch()
    records = batch.records
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
            batch.skipped += 1  # already applied (a refetch), or no longer ours
            continue
        advance(topic, partition, offset)
        value = message.value()
        if value is None:
            batch.rejected.append((message, "$: empty message (no value)"))
            continue
        try:
            event = (
                decode_prediction(value)
                if topic == predictions_topic
                else decode_ground_truth(value)
            )
        except EventDecodeError as exc:
            batch.rejected.append((message, exc.reason))
            continue
        key = message.key()
        if key != event.model_id.encode():
            # the key decides the partition, and a model's state lives with its partition
            batch.rejected.append((message, _key_mismatch(event.model_id, key)))
            continue
        models.add((partition, event.model_id))
        records.append(InputRecord(event, partition, offset, message.timestamp()[1] / 1000.0))
    return batch


def _key_mismatch(model_id: str, key: bytes | None) -> str:
    shown = "no key" if key is None else f"key {key.decode('utf-8', 'replace')!r}"
    return (
        f"$.model_id: {model_id!r} does not match the message's {shown} "
        "(predictions and ground truth must be keyed by model_id)"
    )
