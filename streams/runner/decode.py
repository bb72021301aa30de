"""Step "decode" of the loop: Kafka messages to engine records, bad ones set aside.

Only messages that are new for a partition we own are decoded (see :class:`OffsetBook`);
each one advances its partition's next offset, whether it decodes or not, because a bad
message is handled too: it goes to the dead-letter topic. Nothing a message provokes escapes
this step: the contract's decoder turns every parse or validation problem into
:class:`~streams.events.EventDecodeError`, and anything else a message could still raise
here is caught and dead-lettered with its type, so one message can never stop a partition.
A message of a model the engine does not admit (its cap of models per partition is reached)
is dead-lettered too, so junk keys cannot grow the monitor's memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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

__all__ = ["Admit", "DecodedBatch", "decode_batch"]

log = logging.getLogger("driftradar.runner")

#: ``admit(model_id, partition)``: ``None`` if the engine takes the model's events, else why not.
Admit = Callable[[str, int], str | None]


def _admit_all(model_id: str, partition: int) -> str | None:
    return None


#: ``reject(message, reason)``: called for each unusable message, in consumption order.
Reject = Callable[[Message, str], None]


@dataclass(slots=True)
class DecodedBatch:
    """The records of one poll, the rejected messages with their reasons, and errors.

    Rejected messages are also handed to ``reject`` as they are met, so that what the
    caller does with them (count them on a model, if it exists yet) follows the order of
    the stream, not the batching.
    """

    records: list[InputRecord] = field(default_factory=list)
    rejected: list[tuple[Message, str]] = field(default_factory=list)
    errors: list[KafkaError] = field(default_factory=list)
    skipped: int = 0
    reject: Reject | None = None

    def refuse(self, message: Message, reason: str) -> None:
        self.rejected.append((message, reason))
        if self.reject is not None:
            self.reject(message, reason)


def decode_batch(
    messages: list[Message],
    predictions_topic: str,
    book: OffsetBook,
    admit: Admit = _admit_all,
    reject: Reject | None = None,
) -> DecodedBatch:
    """Decode ``messages``; those of ``predictions_topic`` are predictions, others ground truth."""
    batch = DecodedBatch(reject=reject)
    refuse = batch.refuse
    records = batch.records
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
            refuse(message, "$: empty message (no value)")
            continue
        try:
            event = (
                decode_prediction(value)
                if topic == predictions_topic
                else decode_ground_truth(value)
            )
            key = message.key()
            if key != event.model_id.encode():
                # the key decides the partition, and a model's state lives with its partition
                refuse(message, _key_mismatch(event.model_id, key))
                continue
        except EventDecodeError as exc:
            refuse(message, exc.reason)
            continue
        except Exception as exc:  # a last resort: no message may stop the loop
            _log_once(exc, topic, partition, offset)
            refuse(message, f"$: cannot decode ({type(exc).__name__}: {exc})")
            continue
        refused = admit(event.model_id, partition)
        if refused is not None:
            refuse(message, refused)
            continue
        records.append(InputRecord(event, partition, offset, message.timestamp()[1] / 1000.0))
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


def _key_mismatch(model_id: str, key: bytes | None) -> str:
    shown = "no key" if key is None else f"key {key.decode('utf-8', 'replace')!r}"
    return (
        f"$.model_id: {model_id!r} does not match the message's {shown} "
        "(predictions and ground truth must be keyed by model_id)"
    )
