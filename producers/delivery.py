"""An idempotent Kafka producer that counts deliveries and never hides a failed one.

librdkafka sends in the background and reports each message's fate to a callback served by
``poll()``. :class:`TrackedProducer` serves those callbacks as it sends, counts ``delivered``
and ``failed`` messages, hands each failure to ``on_delivery_error``, waits and retries when
the local queue is full (``BufferError``), and makes :meth:`TrackedProducer.flush` raise
:class:`DeliveryError` while any message is undelivered, so a caller cannot lose events silently.

The accounting itself (:class:`DeliveryLedger`) is transport-free: the Faust client
(:mod:`producers.faust_client`) keeps its books with the same ledger, so both clients report
failures the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from streams.core.errors import PublishError
from streams.core.kafka import producer_config

__all__ = [
    "DeliveryCounts",
    "DeliveryError",
    "DeliveryFailure",
    "DeliveryLedger",
    "TrackedProducer",
]

_LOG: Final = logging.getLogger(__name__)

#: Failures kept for the next DeliveryError (the count is exact beyond it).
_KEPT_FAILURES: Final = 100
#: How long one wait for queue space lasts when librdkafka's local queue is full, in seconds.
_QUEUE_FULL_WAIT_S: Final = 0.01


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """One message the broker did not acknowledge, and why.

    ``error`` is librdkafka's ``KafkaError`` (sync SDK) or the exception the Faust app's
    producer raised (Faust client).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    error: KafkaError | BaseException

    def __str__(self) -> str:
        key = self.key.decode(errors="replace") if self.key is not None else None
        if isinstance(self.error, KafkaError):
            reason = self.error.str()
        else:
            reason = str(self.error) or type(self.error).__name__
        return f"topic {self.topic!r}, key {key!r}: {reason}"


class DeliveryError(PublishError, RuntimeError):
    """Messages were not delivered: ``failed`` failed, ``pending`` were still queued.

    ``failures`` holds the first of the failed ones (up to 100), with their bytes.
    """

    def __init__(self, failures: list[DeliveryFailure], failed: int, pending: int) -> None:
        parts = []
        if failed:
            first = f" (first: {failures[0]})" if failures else ""
            parts.append(f"{failed} message(s) failed{first}")
        if pending:
            parts.append(f"{pending} message(s) still undelivered when the flush timed out")
        super().__init__("; ".join(parts) or "undelivered messages")
        self.failures = failures
        self.failed = failed
        self.pending = pending


class DeliveryLedger:
    """Counts sent, delivered and failed messages and keeps the failures not yet raised.

    Each failure goes to ``on_delivery_error`` (else the log) as it is recorded;
    :meth:`settle` raises :class:`DeliveryError` for the failures recorded since the last
    one and for messages still pending. Thread-safe.

    >>> ledger = DeliveryLedger(on_delivery_error=print)
    >>> ledger.record_sent(); ledger.record_sent(); ledger.record_delivered()
    >>> ledger.record_failed(DeliveryFailure("predictions", b"churn", b"{}", TimeoutError("late")))
    topic 'predictions', key 'churn': late
    >>> (ledger.sent, ledger.delivered, ledger.failed, ledger.pending)
    (2, 1, 1, 0)
    >>> ledger.settle()
    Traceback (most recent call last):
    ...
    producers.delivery.DeliveryError: 1 message(s) failed (first: topic 'predictions', key 'churn': late)
    >>> ledger.settle()  # each failure is raised once
    """  # noqa: E501

    def __init__(self, on_delivery_error: Callable[[DeliveryFailure], None] | None = None) -> None:
        self._on_delivery_error = on_delivery_error
        self._lock = threading.Lock()
        self._unreported: list[DeliveryFailure] = []
        self._unreported_count = 0
        self.sent = 0
        self.delivered = 0
        self.failed = 0

    @property
    def pending(self) -> int:
        """Messages sent whose fate is not known yet."""
        with self._lock:
            return self.sent - self.delivered - self.failed

    def record_sent(self) -> None:
        with self._lock:
            self.sent += 1

    def record_delivered(self) -> None:
        with self._lock:
            self.delivered += 1

    def record_failed(self, failure: DeliveryFailure) -> None:
        with self._lock:
            self.failed += 1
            self._unreported_count += 1
            if len(self._unreported) < _KEPT_FAILURES:
                self._unreported.append(failure)
        if self._on_delivery_error is not None:
            self._on_delivery_error(failure)
        else:
            _LOG.error("delivery failed: %s", failure)

    def settle(self) -> None:
        """Raise :class:`DeliveryError` if a failure is unraised or a message is pending."""
        pending = self.pending
        with self._lock:
            failures, self._unreported = self._unreported, []
            failed, self._unreported_count = self._unreported_count, 0
        if failed or pending:
            raise DeliveryError(failures, failed, pending)


class DeliveryCounts:
    """``sent``, ``delivered``, ``failed`` and ``pending``, read from ``self._ledger``.

    The counters every reporting client exposes, written once.
    """

    _ledger: DeliveryLedger

    @property
    def sent(self) -> int:
        """Events accepted (queued or handed to the producer)."""
        return self._ledger.sent

    @property
    def delivered(self) -> int:
        """Messages the broker acknowledged."""
        return self._ledger.delivered

    @property
    def failed(self) -> int:
        """Messages that could not be delivered."""
        return self._ledger.failed

    @property
    def pending(self) -> int:
        """Messages sent whose fate is not known yet (nor failed)."""
        return self._ledger.pending


class TrackedProducer(DeliveryCounts):
    """confluent-kafka's idempotent producer with delivery accounting.

    ``config`` overrides :func:`streams.core.kafka.producer_config` (any librdkafka
    property). ``poll_every`` sends between two ``poll(0)`` calls that serve delivery
    callbacks: 1 for a model server (callbacks promptly), more for bulk senders.
    Not meant to be shared between threads without care: callbacks run in whichever thread
    calls :meth:`send`, :meth:`poll` or :meth:`flush` (the counters are locked).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        config: Mapping[str, Any] | None = None,
        on_delivery_error: Callable[[DeliveryFailure], None] | None = None,
        poll_every: int = 1,
    ) -> None:
        if isinstance(poll_every, bool) or not isinstance(poll_every, int) or poll_every < 1:
            raise ValueError(f"poll_every must be a positive integer, got {poll_every!r}")
        settings = producer_config(bootstrap, config)
        settings["on_delivery"] = self._on_delivery
        settings.setdefault("error_cb", _log_client_error)
        self._producer = Producer(settings)
        self._ledger = DeliveryLedger(on_delivery_error)
        self._poll_every = poll_every
        self._since_poll = 0

    @property
    def ledger(self) -> DeliveryLedger:
        """The delivery books (counts and unraised failures)."""
        return self._ledger

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue one message, waiting for space if the local queue is full."""
        while True:
            try:
                self._producer.produce(topic, value, key)
                break
            except BufferError:
                self._producer.poll(_QUEUE_FULL_WAIT_S)
        self._ledger.record_sent()
        self._since_poll += 1
        if self._since_poll >= self._poll_every:
            self._since_poll = 0
            self._producer.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks; returns how many were served."""
        return int(self._producer.poll(timeout))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every message is acknowledged; raise :class:`DeliveryError` otherwise.

        Each failure is raised once: a later flush raises only for newer failures.
        """
        deadline = time.monotonic() + timeout
        self._producer.flush(timeout)
        while self.pending and time.monotonic() < deadline:  # callbacks not served yet
            self._producer.poll(min(0.05, max(deadline - time.monotonic(), 0.0)))
        self._ledger.settle()

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self._ledger.record_delivered()
            return
        self._ledger.record_failed(
            DeliveryFailure(message.topic() or "", message.key(), message.value(), error)
        )


def _log_client_error(error: KafkaError) -> None:
    """librdkafka's client-level errors (broker down, ...): retried internally, so logged."""
    _LOG.warning("kafka client error: %s", error.str())
