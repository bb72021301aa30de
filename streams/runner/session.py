"""What one run of the monitor holds open: the Redis client and checkpoint store, the
publisher and the consumer, opened in order and closed in reverse by :func:`open_session`.

The consumer is created but not subscribed: the loop subscribes it with its own rebalance
callbacks, so neither needs the other half-built.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from confluent_kafka import Consumer, KafkaException

from streams.checkpoint import CheckpointStore
from streams.core.kafka import consumer_config
from streams.core.publisher import Publisher
from streams.core.redis_client import open_redis
from streams.core.settings import RedisConfig, TopicsConfig
from streams.core.topics import partition_counts
from streams.runner.errors import UnreachableError
from streams.runner.layout import check_layout
from streams.runner.properties import common_properties

__all__ = ["Session", "SessionSettings", "open_session"]

log = logging.getLogger("driftradar.runner")


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Where the session connects (a subset of the runner's settings)."""

    bootstrap: str
    redis_url: str
    group_id: str
    topics: TopicsConfig
    redis: RedisConfig
    kafka: dict[str, Any]
    consumer_properties: dict[str, Any]
    producer_properties: dict[str, Any]
    group_timings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Session:
    """The open connections of one run."""

    redis: redis.Redis
    store: CheckpointStore
    publisher: Publisher
    consumer: Consumer


@contextlib.contextmanager
def open_session(
    settings: SessionSettings, *, on_stats: Callable[[str], None]
) -> Iterator[Session]:
    """Redis (answering), the topics (checked), the publisher and an unsubscribed consumer."""
    with contextlib.ExitStack() as stack:
        client = open_redis(settings.redis_url, settings.redis)
        stack.callback(client.close)
        bulk = open_redis(
            settings.redis_url,
            settings.redis,
            socket_timeout=settings.redis.checkpoint_timeout_seconds,
        )
        stack.callback(bulk.close)
        store = CheckpointStore(client, settings.group_id, bulk=bulk)
        _check_topics(settings)
        publisher = Publisher(settings.bootstrap, settings.topics, settings.producer_properties)
        stack.callback(publisher.close)
        config = consumer_config(
            settings.bootstrap,
            settings.group_id,
            {"stats_cb": on_stats, **settings.consumer_properties},
            group_timings=settings.group_timings,
        )
        consumer = Consumer(config)
        stack.callback(consumer.close)  # leaves the group; on_revoke runs before it returns
        yield Session(client, store, publisher, consumer)


def _check_topics(settings: SessionSettings) -> None:
    topics = settings.topics
    names = (*topics.consumed, topics.alerts, topics.retrain_requests, topics.dead_letter)
    try:
        counts = partition_counts(
            settings.bootstrap, names, config=common_properties(settings.kafka)
        )
    except KafkaException as exc:
        raise UnreachableError(
            f"cannot reach Kafka at {settings.bootstrap}: {exc.args[0].str()}"
        ) from None
    partitions = check_layout(counts, topics.consumed, names[3:])
    log.info(
        "topics %s, %s and %s are co-partitioned (%d partitions)", *topics.consumed, partitions
    )
