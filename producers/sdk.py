"""The client a model server embeds to report predictions and, later, the true outcomes.

Every event is checked against the contract (:mod:`streams.core.events`) before anything is sent,
so a bad argument fails in the caller with a :class:`InvalidEventError` naming it, never in
the monitor (:mod:`producers.reporting`, shared with the Faust client). Messages are keyed by
``model_id``, partitioned by the contract's rule and batched by librdkafka (``linger.ms``);
delivery failures reach ``on_delivery_error``, the ``failed`` counter and :meth:`flush`.

>>> client = MonitorClient("127.0.0.1:1")  # nothing is sent until a log_* call
>>> client.log_prediction("churn", {"plan": ["a"]}, 0.4)
Traceback (most recent call last):
...
producers.reporting.InvalidEventError: features['plan']: expected `bool | float | str | null`, got `array`
>>> client.log_prediction("churn", {"plan": "basic"}, float("nan"))
Traceback (most recent call last):
...
producers.reporting.InvalidEventError: prediction: expected `float | str`, got `null`
>>> client.close(timeout=0)
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from producers.delivery import DeliveryCounts, DeliveryFailure, TrackedProducer
from producers.reporting import (
    InvalidEventError,
    Message,
    check_topic_names,
    ground_truth_message,
    prediction_message,
)
from streams.core.events import Label
from streams.core.kafka import bootstrap_servers
from streams.core.settings import TOPICS

__all__ = ["InvalidEventError", "MonitorClient"]


class MonitorClient(DeliveryCounts):
    """Report predictions and ground truth to driftradar through Kafka.

    ``bootstrap`` defaults to ``$KAFKA_BOOTSTRAP_SERVERS``; ``config`` overrides any
    librdkafka property of the idempotent producer (e.g. SASL/TLS, ``linger.ms``).
    ``on_delivery_error`` is called (from ``log_*``/``flush``) for every message the broker
    did not acknowledge; ``delivered`` and ``failed`` count outcomes. Use it as a context
    manager, or call :meth:`close`, so that queued events are flushed.
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        *,
        predictions_topic: str = TOPICS.predictions,
        ground_truth_topic: str = TOPICS.ground_truth,
        config: Mapping[str, Any] | None = None,
        on_delivery_error: Callable[[DeliveryFailure], None] | None = None,
    ) -> None:
        check_topic_names(
            predictions_topic=predictions_topic, ground_truth_topic=ground_truth_topic
        )
        self._producer = TrackedProducer(
            bootstrap_servers(bootstrap), config=config, on_delivery_error=on_delivery_error
        )
        self._ledger = self._producer.ledger
        self._predictions_topic = predictions_topic
        self._ground_truth_topic = ground_truth_topic
        self._closed = False

    def log_prediction(
        self,
        model_id: str,
        features: Mapping[str, Any],
        prediction: float | str,
        *,
        model_version: str = "unknown",
        event_id: str | None = None,
        timestamp: datetime | float | None = None,
    ) -> str:
        """Send one prediction; returns its ``event_id`` (a random uuid4 hex when not given).

        ``features`` values are numbers (numpy scalars too), strings, bools or None.
        ``timestamp`` (timezone-aware datetime or epoch seconds) defaults to now. Keep the
        returned id to report the outcome later with :meth:`log_ground_truth`.
        """
        message = prediction_message(
            model_id,
            features,
            prediction,
            model_version=model_version,
            event_id=event_id,
            timestamp=timestamp,
        )
        self._send(self._predictions_topic, message)
        return message.event_id

    def log_ground_truth(
        self,
        event_id: str,
        model_id: str,
        label: Label,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Send the true outcome of the prediction ``event_id`` (now, or whenever known)."""
        message = ground_truth_message(event_id, model_id, label, timestamp=timestamp)
        self._send(self._ground_truth_topic, message)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise ``DeliveryError`` if any was not delivered."""
        self._producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush (raising on undelivered events) and refuse further events."""
        if self._closed:
            return
        self._closed = True
        self._producer.flush(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, topic: str, message: Message) -> None:
        if self._closed:
            raise RuntimeError("MonitorClient is closed")
        self._producer.send(topic, message.key, message.value)
