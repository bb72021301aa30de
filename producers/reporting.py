"""What a model server reports, checked against the contract and encoded, ready to send.

The one piece the sync SDK (:mod:`producers.sdk`) and the Faust client
(:mod:`producers.faust_client`) share, so that both apply the same rules: every event is
validated by the contract's own decoder (:mod:`streams.core.events`) before anything is sent, a
bad argument raises :class:`InvalidEventError` naming it, and a message is the compact JSON
of the event keyed by its ``model_id``.

>>> message = prediction_message("churn", {"plan": "basic"}, 0.4, event_id="e1", timestamp=0)
>>> message.event_id, message.key, message.value
('e1', b'churn', b'{"event_id":"e1","model_id":"churn","features":{"plan":"basic"},"prediction":0.4,"model_version":"unknown","timestamp":0.0}')
>>> prediction_message("churn", {"plan": ["a"]}, 0.4)
Traceback (most recent call last):
...
producers.reporting.InvalidEventError: features['plan']: expected `bool | float | str | null`, got `array`
"""  # noqa: E501

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

import msgspec

from streams.core.errors import DriftradarError
from streams.core.events import (
    EventDecodeError,
    Label,
    decode_ground_truth,
    decode_prediction,
    encode,
)

__all__ = [
    "InvalidEventError",
    "Message",
    "check_topic_names",
    "ground_truth_message",
    "prediction_message",
]


class InvalidEventError(DriftradarError, ValueError):
    """An argument breaks the event contract; ``argument`` names it (``features['x']``)."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Message:
    """One checked event as a Kafka message: ``key`` is the ``model_id`` (UTF-8)."""

    event_id: str
    key: bytes
    value: bytes


def check_topic_names(**topics: str) -> None:
    """Refuse an empty or non-string topic name, naming the argument.

    >>> check_topic_names(predictions_topic="")
    Traceback (most recent call last):
    ...
    ValueError: predictions_topic must be a non-empty topic name, got ''
    """
    for name, topic in topics.items():
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"{name} must be a non-empty topic name, got {topic!r}")


def prediction_message(
    model_id: str,
    features: Mapping[str, Any],
    prediction: float | str,
    *,
    model_version: str = "unknown",
    event_id: str | None = None,
    timestamp: datetime | float | None = None,
) -> Message:
    """A checked prediction; ``event_id`` is a random uuid4 hex when not given.

    ``features`` values are numbers (numpy scalars too), strings, bools or None.
    ``timestamp`` (timezone-aware datetime or epoch seconds) defaults to now.
    """
    payload = {
        "event_id": uuid.uuid4().hex if event_id is None else event_id,
        "model_id": model_id,
        "model_version": model_version,
        "timestamp": time.time() if timestamp is None else timestamp,
        "features": features,
        "prediction": prediction,
    }
    event = _checked(payload, decode_prediction)
    return Message(event.event_id, event.model_id.encode(), encode(event))


def ground_truth_message(
    event_id: str,
    model_id: str,
    label: Label,
    *,
    timestamp: datetime | float | None = None,
) -> Message:
    """A checked ground-truth event for the prediction ``event_id``."""
    payload = {
        "event_id": event_id,
        "model_id": model_id,
        "timestamp": time.time() if timestamp is None else timestamp,
        "label": label,
    }
    event = _checked(payload, decode_ground_truth)
    return Message(event.event_id, event.model_id.encode(), encode(event))


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
