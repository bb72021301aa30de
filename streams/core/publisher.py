"""Publishing alerts, retrain requests, retrain results and dead letters with the idempotent
producer.

Messages are produced asynchronously; :meth:`Publisher.flush` waits until every one of them is
acknowledged and raises :class:`PublishError` if any delivery failed, so the caller can refuse
to checkpoint (and so never record progress past an alert that was not delivered). The
producer only reports failed deliveries (``delivery.report.only.error``), which keeps the
per-message cost of a healthy stream low.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from streams.core.errors import PublishError
from streams.core.events import Alert, DeadLetter, RetrainRequest, RetrainResult, encode
from streams.core.kafka import producer_config
from streams.core.settings import TopicsConfig

__all__ = ["DeliveryPendingError", "PublishError", "Publisher"]

#: How long a flush waits for the broker before it is treated as a failure, in seconds.
FLUSH_TIMEOUT_S: Final = 30.0


class DeliveryPendingError(PublishError):
    """Messages are not acknowledged yet (the broker is slow or away), none failed: the
    checkpoint must wait, and a later flush may still succeed."""

    def __init__(self, remaining: int, timeout: float) -> None:
        super().__init__(
            f"{remaining} message(s) still unacknowledged after {timeout:g} s: "
            "is the broker reachable?"
        )
        self.remaining = remaining


class Publisher:
    """Produces the monitor's output to ``topics.alerts``, ``.retrain_requests`` and
    ``.dead_letter`` (and the retrain worker's to ``.retrain_results``); ``flush()`` is the
    durability point."""

    def __init__(
        self,
        bootstrap: str,
        topics: TopicsConfig,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        config = producer_config(bootstrap, extra)
        config["delivery.report.only.error"] = True
        config["on_delivery"] = self._on_delivery
        config["error_cb"] = self._on_error
        self._producer = Producer(config)
        self._topics = topics
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self.published = 0

    @property
    def topics(self) -> TopicsConfig:
        return self._topics

    def alerts(self, alerts: Iterable[Alert]) -> None:
        """Queue alerts, keyed by ``model_id`` so a model's alerts stay in order."""
        for alert in alerts:
            self._produce(self._topics.alerts, alert.model_id, encode(alert))

    def retrain_requests(self, requests: Iterable[RetrainRequest]) -> None:
        for request in requests:
            self._produce(self._topics.retrain_requests, request.model_id, encode(request))

    def retrain_results(self, results: Iterable[RetrainResult]) -> None:
        """Queue retrain outcomes to ``topics.retrain_results``, keyed by ``model_id``."""
        for result in results:
            self._produce(self._topics.retrain_results, result.model_id, encode(result))

    def dead_letter(self, letter: DeadLetter) -> None:
        self._produce(self._topics.dead_letter, letter.key, encode(letter))

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until everything queued is delivered.

        Raises :class:`PublishError` if a delivery failed (the message is lost for good),
        :class:`DeliveryPendingError` if some are still unacknowledged after ``timeout``.
        """
        remaining = self._producer.flush(timeout)
        self._raise_failures()
        if remaining:
            raise DeliveryPendingError(remaining, timeout)

    def poll(self) -> None:
        """Serve delivery callbacks without waiting (call once per batch)."""
        self._producer.poll(0)
        self._raise_failures()

    def close(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        self._producer.flush(timeout)

    @property
    def pending(self) -> int:
        """Messages queued or in flight (not yet acknowledged)."""
        return len(self._producer)

    def _produce(self, topic: str, key: str | bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                # The local queue is full: let the producer drain, then retry.
                self._producer.poll(0.1)
        self.published += 1

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            with self._lock:
                self._failures.append(f"delivery to topic {msg.topic()!r} failed: {err.str()}")

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            with self._lock:
                self._failures.append(f"producer fatal error: {err.str()}")

    def _raise_failures(self) -> None:
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise PublishError(failures[0] + more)
