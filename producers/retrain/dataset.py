"""Read a model's labelled events of a time window back from the input topics.

The local trainer needs (features, served prediction, label) for every prediction whose
event time lies in the request's window. The broker cannot seek by time reliably (tansu's
``offsets_for_times`` is wrong), so we read ``predictions`` and ``ground-truth`` from the
beginning to their current end (``enable.partition.eof``, or the first message written
after the read began, whichever comes first) without joining a group, filter
by ``model_id`` (the message key, then the decoded field) and event time, and join by
``event_id``. Messages that break the contract are skipped (the monitor dead-letters them).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from producers.retrain.errors import ActionError
from streams.core.events import (
    EventDecodeError,
    FeatureValue,
    Label,
    Prediction,
    decode_ground_truth,
    decode_prediction,
)
from streams.core.kafka import consumer_config

__all__ = ["LabelledEvent", "parse_time", "read_window"]

_EOF: Final = KafkaError._PARTITION_EOF  # noqa: SLF001 (librdkafka's public code, _-named)


@dataclass(frozen=True)
class LabelledEvent:
    event_id: str
    event_time: float
    model_version: str
    features: Mapping[str, FeatureValue]
    prediction: float | str
    label: Label


def parse_time(field: str, text: str) -> float:
    """Epoch seconds of an RFC 3339 window bound; error naming the field otherwise.

    >>> parse_time("window.start", "2026-11-27T10:00:00Z")
    1795773600.0
    >>> parse_time("window.end", "yesterday")
    Traceback (most recent call last):
    ...
    producers.retrain.errors.ActionError: window.end: 'yesterday' is not an RFC 3339 timestamp
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ActionError(f"{field}: {text!r} is not an RFC 3339 timestamp", retryable=False)
    return parsed.timestamp()


def read_window(
    bootstrap: str,
    *,
    predictions_topic: str,
    ground_truth_topic: str,
    model_id: str,
    start: float,
    end: float,
    consumer_extra: Mapping[str, Any] | None = None,
    timeout: float = 120.0,
    max_rows: int = 500_000,
) -> list[LabelledEvent]:
    """Every prediction of ``model_id`` with event time in ``[start, end]`` that has a label.

    Sorted by event time. More than ``max_rows`` predictions in the window is an error
    (memory is bounded); a read that does not reach the end within ``timeout`` is a
    retryable error.
    """
    if end < start:
        raise ActionError("window.end is before window.start", retryable=False)
    key = model_id.encode()
    predictions: dict[str, tuple[Prediction, float]] = {}

    def on_prediction(message: Message) -> None:
        try:
            event = decode_prediction(message.value() or b"")
        except EventDecodeError:
            return
        if event.model_id != model_id:
            return
        _, stamp = message.timestamp()
        at = event.event_time(stamp / 1000 if stamp and stamp > 0 else None)
        if start <= at <= end:
            predictions[event.event_id] = (event, at)
            if len(predictions) > max_rows:
                raise ActionError(
                    f"more than {max_rows} predictions of {model_id!r} in the window: "
                    "narrow the window or raise --max-rows",
                    retryable=False,
                )

    labels: dict[str, Label] = {}

    def on_truth(message: Message) -> None:
        try:
            event = decode_ground_truth(message.value() or b"")
        except EventDecodeError:
            return
        if event.model_id == model_id and event.event_id in predictions:
            labels[event.event_id] = event.label

    deadline = time.monotonic() + timeout
    _read_to_end(bootstrap, predictions_topic, key, on_prediction, consumer_extra, deadline)
    _read_to_end(bootstrap, ground_truth_topic, key, on_truth, consumer_extra, deadline)
    joined = [
        LabelledEvent(
            event_id=event_id,
            event_time=at,
            model_version=event.model_version,
            features=event.features,
            prediction=event.prediction,
            label=labels[event_id],
        )
        for event_id, (event, at) in predictions.items()
        if event_id in labels
    ]
    joined.sort(key=lambda e: (e.event_time, e.event_id))
    return joined


def _read_to_end(
    bootstrap: str,
    topic: str,
    key: bytes,
    handle: Callable[[Message], None],
    extra: Mapping[str, Any] | None,
    deadline: float,
) -> None:
    config = consumer_config(
        bootstrap,
        f"driftradar-retrain-reader-{uuid.uuid4().hex[:12]}",
        {**(extra or {}), "enable.partition.eof": True},
    )
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(topic, timeout=max(deadline - time.monotonic(), 1.0))
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ActionError(f"topic {topic!r} does not exist", retryable=False)
        partitions = sorted(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        began_ms = time.time() * 1000.0
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise ActionError(
                    f"reading {topic!r} did not reach its end in time "
                    f"({len(at_end)}/{len(partitions)} partitions)",
                    retryable=True,
                )
            for message in consumer.consume(5000, 0.2):
                error = message.error()
                if error is None:
                    # The end is where the read began: a partition is done at its end-of-
                    # partition event or at a message written after the read began. On a
                    # topic still being written the event may not come for a long time.
                    _, stamp = message.timestamp()
                    if stamp > began_ms:
                        at_end.add(message.partition() or 0)
                    message_key = message.key()
                    if message_key is None or message_key == key:
                        handle(message)
                elif error.code() == _EOF:
                    at_end.add(message.partition() or 0)
                else:
                    raise ActionError(f"reading {topic!r}: {error.str()}", retryable=True)
    finally:
        consumer.close()
