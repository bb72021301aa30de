"""Route the config file's ``kafka:`` properties to the client that understands them.

One ``kafka:`` section configures both the consumer and the producer (SASL/TLS settings are
common to both); librdkafka warns about properties meant for the other client, so those are
left out of each (the lists follow librdkafka's CONFIGURATION.md, "C"/"P" columns).

>>> consumer, producer = split_properties(
...     {"security.protocol": "SASL_SSL", "session.timeout.ms": 6000, "linger.ms": 5})
>>> consumer
{'security.protocol': 'SASL_SSL', 'session.timeout.ms': 6000}
>>> producer
{'security.protocol': 'SASL_SSL', 'linger.ms': 5}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CONSUMER_ONLY", "PRODUCER_ONLY", "common_properties", "split_properties"]

CONSUMER_ONLY: Final = frozenset(
    {
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.wait.max.ms",
        "fetch.queue.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.error.backoff.ms",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "consume.callback.max.messages",
    }
)

PRODUCER_ONLY: Final = frozenset(
    {
        "transactional.id",
        "transaction.timeout.ms",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.ms",
        "queue.buffering.backpressure.threshold",
        "linger.ms",
        "message.send.max.retries",
        "retries",
        "compression.codec",
        "compression.type",
        "compression.level",
        "batch.num.messages",
        "batch.size",
        "delivery.report.only.error",
        "sticky.partitioning.linger.ms",
        "request.required.acks",
        "acks",
        "request.timeout.ms",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "partitioner",
    }
)


def split_properties(
    properties: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(consumer properties, producer properties)`` of one ``kafka:`` section."""
    consumer = {k: v for k, v in properties.items() if k not in PRODUCER_ONLY}
    producer = {k: v for k, v in properties.items() if k not in CONSUMER_ONLY}
    return consumer, producer


def common_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties for any client (an admin client): neither consumer- nor producer-only.

    >>> common_properties({"sasl.mechanism": "PLAIN", "linger.ms": 5, "group.id": "g"})
    {'sasl.mechanism': 'PLAIN'}
    """
    return {
        k: v for k, v in properties.items() if k not in CONSUMER_ONLY and k not in PRODUCER_ONLY
    }
