"""Watch the closed loop from outside, as an operator would: tail the alert, retrain-request,
retrain-result and deployment topics, and read the monitor's checkpointed status from Redis.

:class:`Watcher` never blocks for long (one short ``consume`` per call) and never joins a
consumer group (it assigns every partition from offset 0: the demo's topics are its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import redis
from confluent_kafka import Consumer, KafkaError, TopicPartition

from streams.checkpoint import CheckpointError, CheckpointStore
from streams.core.events import (
    EventDecodeError,
    decode_alert,
    decode_deployment,
    decode_retrain_request,
    decode_retrain_result,
)
from streams.core.kafka import consumer_config
from streams.core.topics import partition_counts
from streams.demo.plan import DemoTopics
from streams.demo.state import DemoState
from streams.runner.status import merge_models

__all__ = ["Watcher"]

_EOF: Final = KafkaError._PARTITION_EOF  # noqa: SLF001 (librdkafka's public code, _-named)
#: Seconds between two reads of the monitor's status from Redis.
STATUS_PERIOD: Final = 1.0


class Watcher:
    """Feeds a :class:`DemoState` from the demo's topics and the monitor's Redis status."""

    def __init__(
        self,
        bootstrap: str,
        redis_url: str,
        topics: DemoTopics,
        group_id: str,
        state: DemoState,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self._clock = clock
        self._decoders: dict[str, Callable[[bytes, float], None]] = {
            topics.alerts: lambda raw, at: state.on_alert(decode_alert(raw), at),
            topics.retrain_requests: lambda raw, at: state.on_request(
                decode_retrain_request(raw), at
            ),
            topics.retrain_results: lambda raw, at: state.on_result(decode_retrain_result(raw), at),
            topics.deployments: lambda raw, at: state.on_deployment(decode_deployment(raw), at),
        }
        counts = partition_counts(bootstrap, list(self._decoders), timeout=10.0)
        self._consumer = Consumer(
            consumer_config(bootstrap, f"{group_id}-demo-watcher", {"enable.partition.eof": True})
        )
        self._consumer.assign(
            [
                TopicPartition(topic, p, 0)
                for topic, count in counts.items()
                for p in range(count or 0)
            ]
        )
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5.0)
        self._store = CheckpointStore(self._redis, group_id)
        self._next_status = 0.0
        self.problems: list[str] = []

    def poll(self, timeout: float = 0.0) -> None:
        """Take what arrived on the topics; re-read the status once per :data:`STATUS_PERIOD`."""
        now = self._clock()
        for message in self._consumer.consume(500, timeout):
            error = message.error()
            if error is not None:
                if error.code() != _EOF:
                    self.problems.append(f"{message.topic()}: {error.str()}")
                continue
            handle = self._decoders.get(message.topic() or "")
            if handle is None:
                continue
            try:
                handle(message.value() or b"", now)
            except EventDecodeError as exc:
                self.problems.append(f"{message.topic()} offset {message.offset()}: {exc}")
        if now >= self._next_status:
            self._next_status = now + STATUS_PERIOD
            self.state.on_status(self.status(), now)

    def status(self) -> dict[str, Any]:
        """The monitor's merged per-model status (empty before its first checkpoint)."""
        try:
            return merge_models(s.status for s in self._store.statuses())
        except (redis.RedisError, CheckpointError) as exc:
            self.problems.append(f"reading the monitor status: {exc}")
            return {}

    def close(self) -> None:
        self._consumer.close()
        self._redis.close()
