"""librdkafka settings in one place: fast group joins, low fetch latency, idempotent produce.

Every consumer, producer and admin client of the project is configured here, so the
settings that make the local broker (tansu) behave — short session timeout, short fetch
wait — are not scattered. Real Apache Kafka accepts the same values.

Every producer partitions keys by the contract's rule (:data:`PARTITIONER`, the Java
client's murmur2), so that a model's predictions and labels land on the same partition
whichever client — Java, Go, aiokafka/Faust or librdkafka — produced them:

>>> producer_config("127.0.0.1:9092")["partitioner"]
'murmur2_random'
>>> producer_config("127.0.0.1:9092", {"partitioner": "consistent_random"})
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: partitioner: must be 'murmur2_random' (or left out), got 'consistent_random': ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, TypedDict

from msgspec.structs import astuple

from streams.core.errors import ConfigError
from streams.core.settings import DEPLOYMENTS_TOPIC, TOPICS

__all__ = [
    "DEFAULT_TOPICS",
    "FAST_GROUP",
    "PARTITIONER",
    "PREFETCH_KBYTES",
    "TEST_GROUP",
    "FaustGroupSettings",
    "admin_config",
    "bootstrap_servers",
    "consumer_config",
    "faust_group_settings",
    "partitioner_problem",
    "producer_config",
]

#: Group-membership timings: a join/rebalance on tansu waits ~session.timeout.ms / 2.
FAST_GROUP: Final[Mapping[str, Any]] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
}
#: Even faster timings for the test suite (join ~1 s on the local broker).
TEST_GROUP: Final[Mapping[str, Any]] = {
    "session.timeout.ms": 2000,
    "heartbeat.interval.ms": 200,
}

_LOW_LATENCY_FETCH: Final[Mapping[str, Any]] = {
    # tansu answers a waiting fetch only after fetch.wait.max.ms: keep it short.
    "fetch.wait.max.ms": 25,
    # Once the prefetch queue is full (PREFETCH_KBYTES), librdkafka waits this long before
    # it fetches again (default 1 s): a consumer that is behind drained the queue and sat
    # idle for the rest of that second, over and over. Measured (benchmarks.throughput,
    # 200 000 events): a bare consume + decode 120 000 -> 267 000 events/s, the monitor at
    # one model 60 000 -> 69 000 (10 to 100 ms alike).
    "fetch.queue.backoff.ms": 50,
}

#: The contract's partitioning rule (DESIGN.md "Topics and events"): librdkafka's
#: Java-compatible murmur2 of the key (``murmur2(key) & 0x7fffffff % partitions``), the
#: default of the Java client, aiokafka and Faust; messages without a key go to a random
#: partition. librdkafka's own default (``consistent_random``, CRC32) disagrees with it.
PARTITIONER: Final = "murmur2_random"

#: Upper bound of librdkafka's prefetch queue (all partitions of a consumer together). The
#: default (64 MiB) lets a consumer that is behind hold ~200 000 events in memory; 16 MiB is
#: still several 10 000-message batches ahead of the loop (measured: no loss of throughput).
PREFETCH_KBYTES: Final = 16_384


#: Every topic the local stack creates: the contract's six and the deployments topic.
DEFAULT_TOPICS: Final[tuple[str, ...]] = (*astuple(TOPICS), DEPLOYMENTS_TOPIC)


def bootstrap_servers(explicit: str | None = None) -> str:
    """The broker address: ``explicit``, else ``$KAFKA_BOOTSTRAP_SERVERS``; error if neither."""
    value = explicit or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not value:
        raise ConfigError(
            "KAFKA_BOOTSTRAP_SERVERS",
            'no Kafka broker configured: set it (or run `eval "$(driftradar stack up)"` '
            "to start a local one)",
        )
    return value


def consumer_config(
    bootstrap: str,
    group_id: str,
    extra: Mapping[str, Any] | None = None,
    *,
    group_timings: Mapping[str, Any] = FAST_GROUP,
) -> dict[str, Any]:
    """A consumer that commits explicit offsets only and starts at the earliest record."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "queued.max.messages.kbytes": PREFETCH_KBYTES,
        **group_timings,
        **_LOW_LATENCY_FETCH,
    }
    config.update(extra or {})
    return config


class FaustGroupSettings(TypedDict):
    """Faust's names for the group timings (``faust.App(..., **settings)``), in seconds."""

    broker_session_timeout: float
    broker_heartbeat_interval: float


def faust_group_settings(timings: Mapping[str, Any] = FAST_GROUP) -> FaustGroupSettings:
    """The same group timings for a Faust app, as its settings (seconds).

    A Faust group join on the local broker waits about half ``broker_session_timeout``
    (Faust's default 60 s: a 31 s join), like librdkafka's.

    >>> faust_group_settings(TEST_GROUP)
    {'broker_session_timeout': 2.0, 'broker_heartbeat_interval': 0.2}
    """
    return {
        "broker_session_timeout": timings["session.timeout.ms"] / 1000,
        "broker_heartbeat_interval": timings["heartbeat.interval.ms"] / 1000,
    }


def partitioner_problem(properties: Mapping[str, Any]) -> str | None:
    """Why librdkafka ``properties`` break the partitioning rule, or None if they keep it.

    For the configuration's ``kafka:`` section (the caller names the key) and for every
    producer's overrides (:func:`producer_config` raises with it).

    >>> partitioner_problem({"linger.ms": 5, "partitioner": "murmur2_random"}) is None
    True
    """
    value = properties.get("partitioner", PARTITIONER)
    if value == PARTITIONER:
        return None
    return (
        f"must be {PARTITIONER!r} (or left out), got {value!r}: every producer of a model's "
        "events must partition keys alike (the Java client's murmur2), or its predictions and "
        "labels land on different partitions and never join"
    )


def producer_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An idempotent producer (acks=all, ordered retries) that batches for a few ms.

    Keys are partitioned by :data:`PARTITIONER`; ``extra`` may override any other property
    and raises ``ValueError`` if it sets another ``partitioner``.
    """
    extra = extra or {}
    problem = partitioner_problem(extra)
    if problem is not None:
        raise ValueError(f"partitioner: {problem}")
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "partitioner": PARTITIONER,
    }
    config.update(extra)
    return config


def admin_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap}
    config.update(extra or {})
    return config
