"""The Faust-native client: a Faust app reports predictions and labels through its own producer.

The asynchronous twin of :class:`producers.MonitorClient` for model servers written as Faust
apps (extra ``driftradar[faust]``). Same arguments, same checks (:mod:`producers.reporting`:
a bad argument raises :class:`~producers.reporting.InvalidEventError` and nothing is sent),
same messages (the contract's JSON, keyed by ``model_id``), same delivery accounting
(:class:`~producers.delivery.DeliveryLedger`: ``on_delivery_error``, counters, a
:meth:`FaustMonitorClient.flush` that raises :class:`~producers.delivery.DeliveryError`).

What differs is the transport: messages go through the app's own producer with Faust's
public channel API, so they share its connection, batching and settings (SASL/TLS, acks,
compression), and nothing blocks the event loop: ``log_*`` awaits only until the producer
has taken the message (room in its buffer, the topic's metadata; at most ``send_timeout``),
and the delivery is counted when the broker acknowledges it. Faust's producer partitions
keys with aiokafka's default partitioner, the Java client's murmur2 — the contract's rule,
the same partition as the sync SDK's ``murmur2_random``; an app configured with another
``producer_partitioner`` is refused.

Why not ``app.topic(...).send(...)`` itself: ``send`` is ``as_future_message`` followed by
``publish_message`` (both public ``ChannelT`` methods), but keeps the message's promise to
itself — when a delivery fails, Faust sets the error on that promise and nobody reads it,
so asyncio logs "FutureMessage exception was never retrieved" for every failed report. The
client takes the same two steps and owns the promise. A consequence: reports are sent at
once even if the app sets ``stream_publish_on_commit`` (they are not held until the
request's offset is committed).

>>> import asyncio, faust
>>> app = faust.App("doc-model-server", broker="kafka://127.0.0.1:1")
>>> monitor = FaustMonitorClient(app)  # nothing connects until a log_* call
>>> asyncio.run(monitor.log_prediction("churn", {"plan": ["a"]}, 0.4))
Traceback (most recent call last):
...
producers.reporting.InvalidEventError: features['plan']: expected `bool | float | str | null`, got `array`
>>> (monitor.sent, monitor.pending)
(0, 0)
"""  # noqa: E501

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

import faust
from faust.types import FutureMessage, TopicT

from producers.delivery import DeliveryCounts, DeliveryFailure, DeliveryLedger
from producers.reporting import (
    Message,
    check_topic_names,
    ground_truth_message,
    prediction_message,
)
from streams.core.events import Label
from streams.core.settings import TOPICS

__all__ = ["FaustMonitorClient"]


class FaustMonitorClient(DeliveryCounts):
    """Report predictions and ground truth to driftradar from a Faust app.

    Call it from the app's event loop (an agent, a timer, a web view) while the app runs;
    its producer is started on first use if it is not yet. ``on_delivery_error`` is called
    (in the event loop) for every message the broker did not acknowledge; ``delivered``,
    ``failed``, ``sent`` and ``pending`` count outcomes. ``async with`` it, or await
    :meth:`close`, so that queued events are waited for.

    ``send_timeout`` bounds how long a ``log_*`` call waits for the producer to take the
    message (room in its buffer, the topic's metadata): past it the event counts as failed
    and the call returns, so a broker outage never holds a request for longer.
    """

    def __init__(
        self,
        app: faust.App,
        *,
        predictions_topic: str = TOPICS.predictions,
        ground_truth_topic: str = TOPICS.ground_truth,
        on_delivery_error: Callable[[DeliveryFailure], None] | None = None,
        send_timeout: float = 30.0,
    ) -> None:
        if not send_timeout > 0:
            raise ValueError(
                f"send_timeout must be a positive number of seconds, got {send_timeout!r}"
            )
        check_topic_names(
            predictions_topic=predictions_topic, ground_truth_topic=ground_truth_topic
        )
        partitioner: object = getattr(app.conf, "producer_partitioner", None)
        if partitioner is not None:
            raise ValueError(
                "producer_partitioner: the app's producer must keep aiokafka's default "
                "partitioner (the Java client's murmur2, the contract's partitioning rule), "
                f"got {partitioner!r}: a model's predictions and labels "
                "would land on different partitions and never join"
            )
        self._predictions = _raw_topic(app, predictions_topic)
        self._ground_truth = _raw_topic(app, ground_truth_topic)
        self._ledger = DeliveryLedger(on_delivery_error)
        self._send_timeout = send_timeout
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._closed = False

    async def log_prediction(
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

        The same arguments and checks as :meth:`producers.MonitorClient.log_prediction`.
        """
        message = prediction_message(
            model_id,
            features,
            prediction,
            model_version=model_version,
            event_id=event_id,
            timestamp=timestamp,
        )
        await self._send(self._predictions, message)
        return message.event_id

    async def log_ground_truth(
        self,
        event_id: str,
        model_id: str,
        label: Label,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Send the true outcome of the prediction ``event_id`` (now, or whenever known)."""
        message = ground_truth_message(event_id, model_id, label, timestamp=timestamp)
        await self._send(self._ground_truth, message)

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait for every event sent so far; raise ``DeliveryError`` if any was not delivered.

        Each failure is raised once: a later flush raises only for newer failures.
        """
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)
        self._ledger.settle()

    async def close(self, timeout: float = 30.0) -> None:
        """Flush (raising on undelivered events) and refuse further events.

        The app's producer is the app's: it is left running.
        """
        if self._closed:
            return
        self._closed = True
        await self.flush(timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, topic: TopicT, message: Message) -> None:
        if self._closed:
            raise RuntimeError("FaustMonitorClient is closed")
        self._ledger.record_sent()
        promise = topic.as_future_message(key=message.key, value=message.value)
        try:
            async with asyncio.timeout(self._send_timeout):
                delivery = await topic.publish_message(promise)
        except TimeoutError:
            error = TimeoutError(
                f"not queued within {self._send_timeout:g} s (is the broker reachable?)"
            )
            self._failed(topic, message, error)
            return
        except Exception as exc:  # refused before it was queued (no broker, too large, ...)
            self._failed(topic, message, exc)
            return
        future = asyncio.ensure_future(delivery)
        self._in_flight.add(future)
        future.add_done_callback(partial(self._settled, topic, message, promise))

    def _settled(
        self,
        topic: TopicT,
        message: Message,
        promise: FutureMessage,
        future: asyncio.Future[Any],
    ) -> None:
        self._in_flight.discard(future)
        if promise.done() and not promise.cancelled():
            promise.exception()  # read, so asyncio does not log it as never retrieved
        if future.cancelled():
            self._failed(topic, message, asyncio.CancelledError("send cancelled"))
        elif (error := future.exception()) is not None:
            self._failed(topic, message, error)
        else:
            self._ledger.record_delivered()

    def _failed(self, topic: TopicT, message: Message, error: BaseException) -> None:
        self._ledger.record_failed(
            DeliveryFailure(topic.get_topic_name(), message.key, message.value, error)
        )


def _raw_topic(app: faust.App, name: str) -> TopicT:
    """``name`` as a topic of bytes keys and values: the client encodes, Faust only sends."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
