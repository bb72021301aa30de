"""librdkafka settings in one place: fast group joins, low fetch latency, idempotent produce.

Every consumer, producer and admin client of the project is configured here, so the
settings that make the local broker (tansu) behave — short session timeout, short fetch
wait — are not scattered. Real Apache Kafka accepts the same values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from msgspec.structs import astuple

from streams.core.errors import ConfigError
from streams.core.settings import DEPLOYMENTS_TOPIC, TOPICS

__all__ = [
    "DEFAULT_TOPICS",
    "FAST_GROUP",
    "PREFETCH_KBYTES",
    "TEST_GROUP",
    "admin_config",
    "bootstrap_servers",
    "consumer_config",
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
}

#: Upper bound of librdkafka's prefetch queue (all partitions of a consumer together). The
#: default (64 MiB) lets a consumer that is behind hold ~200 000 events in memory; 16 MiB is
#: still several 10 000-message batches ahead of the loop (measured: no loss of throughput).
PREFETCH_KBYTES: Final = 16_384


#: Every topic the local stack creates: the contract's five and the deployments topic.
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


def producer_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An idempotent producer (acks=all, ordered retries) that batches for a few ms."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    config.update(extra or {})
    return config


def admin_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap}
    config.update(extra or {})
    return config
