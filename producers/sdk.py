"""The client a model server embeds to report predictions and, later, the true outcomes.

Every event is checked against the contract (:mod:`streams.events`) before anything is sent,
so a bad argument fails in the caller with a :class:`InvalidEventError` naming it, never in
the monitor. Messages are keyed by ``model_id`` and batched by librdkafka (``linger.ms``);
delivery failures reach ``on_delivery_error``, the ``failed`` counter and :meth:`flush`.

>>> client = MonitorClient("127.0.0.1:1")  # nothing is sent until a log_* call
>>> client.log_prediction("churn", {"plan": ["a"]}, 0.4)
Traceback (most recent call last):
...
producers.sdk.InvalidEventError: features['plan']: expected `bool | float | str | null`, got `array`
>>> client.log_prediction("churn", {"plan": "basic"}, float("nan"))
Traceback (most recent call last):
...
producers.sdk.InvalidEventError: prediction: expected `float | str`, got `null`
>>> client.close(timeout=0)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import msgspec

from producers.delivery import DeliveryFailure, TrackedProducer
from streams.core.errors import DriftradarError
from streams.core.settings import TOPICS
from streams.events import (
    EventDecodeError,
    GroundTruth,
    Label,
    decode_ground_truth,
    decode_prediction,
    encode,
)
from streams.kafka_config import bootstrap_servers

__all__ = ["InvalidEventError", "MonitorClient"]


class InvalidEventError(DriftradarError, ValueError):
    """An argument breaks the event contract; ``argument`` names it (``features['x']``)."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class MonitorClient:
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
        for name, topic in (
            ("predictions_topic", predictions_topic),
            ("ground_truth_topic", ground_truth_topic),
        ):
            if not isinstance(topic, str) or not topic:
                raise ValueError(f"{name} must be a non-empty topic name, got {topic!r}")
        self._producer = TrackedProducer(
            bootstrap_servers(bootstrap), config=config, on_delivery_error=on_delivery_error
        )
        self._predictions_topic = predictions_topic
        self._ground_truth_topic = ground_truth_topic
        self._closed = False

    @property
    def delivered(self) -> int:
        """Messages the broker acknowledged (counted as callbacks are served)."""
        return self._producer.delivered

    @property
    def failed(self) -> int:
        """Messages that could not be delivered."""
        return self._producer.failed

    @property
    def sent(self) -> int:
        """Events accepted by :meth:`log_prediction` / :meth:`log_ground_truth`."""
        return self._producer.sent

    @property
    def pending(self) -> int:
        """Events sent whose delivery is not confirmed yet (nor failed)."""
        return self._producer.pending

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
        event_id = uuid.uuid4().hex if event_id is None else event_id
        payload = {
            "event_id": event_id,
            "model_id": model_id,
            "model_version": model_version,
            "timestamp": time.time() if timestamp is None else timestamp,
            "features": features,
            "prediction": prediction,
        }
        event = _checked(payload, decode_prediction)
        self._send(self._predictions_topic, event.model_id, encode(event))
        return event.event_id

    def log_ground_truth(
        self,
        event_id: str,
        model_id: str,
        label: Label,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Send the true outcome of the prediction ``event_id`` (now, or whenever known)."""
        payload = {
            "event_id": event_id,
            "model_id": model_id,
            "timestamp": time.time() if timestamp is None else timestamp,
            "label": label,
        }
        event: GroundTruth = _checked(payload, decode_ground_truth)
        self._send(self._ground_truth_topic, event.model_id, encode(event))

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

    def _send(self, topic: str, model_id: str, value: bytes) -> None:
        if self._closed:
            raise RuntimeError("MonitorClient is closed")
        self._producer.send(topic, model_id.encode(), value)


_T = TypeVar("_T")


def _checked(payload: dict[str, Any], decode: Callable[[bytes], _T]) -> _T:
    """Validate ``payload`` by the contract's own decoder, so the monitor's rules apply.

    The round trip through JSON also catches what would not survive it (NaN, infinity).
    """
    try:
        data = _RAW.encode(payload)
    except TypeError as exc:
        raise InvalidEventError(_unencodable_argument(payload), str(exc)) from None
    try:
        return decode(data)
    except EventDecodeError as exc:
        raise InvalidEventError(_argument(exc.field), exc.problem) from None


def _builtin(value: Any) -> Any:
    """numpy scalars (``np.float64``, ``np.int64``, ``np.bool_``) to plain Python values."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            result = item()
        except (TypeError, ValueError):  # e.g. an array of several values
            result = value
        if isinstance(result, bool | int | float | str) or result is None:
            return result
    raise TypeError(f"unsupported value of type {type(value).__name__}")


_RAW: Final = msgspec.json.Encoder(enc_hook=_builtin)


def _unencodable_argument(payload: dict[str, Any]) -> str:
    for name, value in payload.items():
        try:
            _RAW.encode(value)
        except TypeError:
            if name == "features" and isinstance(value, Mapping):
                return f"features[{_unencodable_key(value)!r}]"
            return name
    return "event"


def _unencodable_key(features: Mapping[Any, Any]) -> Any:
    for key, value in features.items():
        try:
            _RAW.encode({key: value})
        except TypeError:
            return key
    return "?"


def _argument(field: str) -> str:
    """``$.features.plan`` -> ``features['plan']``; ``$.event_id`` -> ``event_id``."""
    path = field.removeprefix("$").removeprefix(".")
    if path.startswith("features."):
        return f"features[{path.removeprefix('features.')!r}]"
    return path or "event"
