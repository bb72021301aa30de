"""The vocabulary of driftradar's settings, and the settings every process shares.

Every settings object is a :class:`Settings`: a frozen ``msgspec.Struct`` that refuses
unknown keys, whose fields declare their default and constraint with the types below
(``cooldown_seconds: NonNegative = 3600.0``); :func:`streams.core.convert.convert` builds
one from plain data with errors that name the key. The default topic names and the
metrics port are defined here, once, for the monitor, the retrain worker and the tools.

>>> from streams.core.convert import convert
>>> convert({"alerts": "alerts-eu"}, TopicsConfig).inputs
('predictions', 'ground-truth')
>>> convert({"alerts": ""}, TopicsConfig, "topics")
Traceback (most recent call last):
...
streams.core.errors.ConfigError: topics.alerts: must be a non-empty string
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from streams.core.convert import FINITE

__all__ = [
    "DEFAULT_METRICS_PORT",
    "DEPLOYMENTS_TOPIC",
    "TOPICS",
    "BrokerConfig",
    "Count",
    "Fraction",
    "KafkaProperties",
    "NonNegative",
    "Number",
    "Port",
    "Positive",
    "PositiveInt",
    "RedisConfig",
    "Settings",
    "Share",
    "Text",
    "TopicsConfig",
]

Number = Annotated[float, msgspec.Meta(ge=-FINITE, le=FINITE)]
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=FINITE)]
Positive = Annotated[float, msgspec.Meta(gt=0, le=FINITE)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
#: a part of something that must not be nothing: (0, 1]
Share = Annotated[float, msgspec.Meta(gt=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Text = Annotated[str, msgspec.Meta(min_length=1)]
#: librdkafka properties, passed through verbatim.
KafkaProperties = dict[str, str | int | float | bool]


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every settings struct: immutable, and unknown keys are refused."""


class TopicsConfig(Settings, frozen=True):
    """Topic names (``topics:``); the defaults are the contract's (DESIGN.md "Topics")."""

    predictions: Text = "predictions"
    ground_truth: Text = "ground-truth"
    alerts: Text = "drift-alerts"
    retrain_requests: Text = "retrain-requests"
    dead_letter: Text = "dead-letter"
    retrain_results: Text = "retrain-results"

    @property
    def inputs(self) -> tuple[str, str]:
        """The two input topics: predictions, ground truth."""
        return (self.predictions, self.ground_truth)

    @property
    def consumed(self) -> tuple[str, str, str]:
        """Every topic the monitor consumes, all co-partitioned (keyed by ``model_id``): the
        inputs and the retrain worker's decisions."""
        return (self.predictions, self.ground_truth, self.retrain_results)


class RedisConfig(Settings, frozen=True):
    """How every Redis client waits and retries (``redis:``), and how long the monitor
    rides out an outage.

    A call fails after ``socket_timeout_seconds`` without an answer and is retried
    ``retries`` times with exponential backoff (with jitter) from ``backoff_base_seconds``
    up to ``backoff_cap_seconds``; while a checkpoint cannot be written the monitor consumes
    nothing and retries, and stops after ``give_up_seconds``. The calls that move many
    models (a checkpoint write of more than 32 MiB, a claim's read) wait
    ``checkpoint_timeout_seconds`` instead: at 1 000 models Redis takes seconds to apply one.
    """

    socket_timeout_seconds: Positive = 3.0
    checkpoint_timeout_seconds: Positive = 60.0
    connect_timeout_seconds: Positive = 3.0
    retries: Count = 2
    backoff_base_seconds: Positive = 0.1
    backoff_cap_seconds: Positive = 2.0
    give_up_seconds: NonNegative = 300.0


class BrokerConfig(Settings, frozen=True):
    """When the monitor reports the broker as unusable (``broker:``).

    ``idle_seconds``: no answer from any broker for this long makes ``/readyz`` say Kafka
    is not ready; ``no_assignment_seconds``: a member with no partition for this long logs
    what to check and publishes an ``infrastructure`` alert.
    """

    idle_seconds: Positive = 15.0
    no_assignment_seconds: Positive = 60.0


#: The contract's topic names.
TOPICS: Final = TopicsConfig()
#: Where the retrain worker's local trainer announces new model versions.
DEPLOYMENTS_TOPIC: Final = "model-deployments"
#: Port of the monitor's ``/metrics``, ``/healthz`` and ``/readyz``.
DEFAULT_METRICS_PORT: Final = 9108
